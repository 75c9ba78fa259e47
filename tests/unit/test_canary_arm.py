"""A session's canary arm (``acf.domain.config_versions.canary_arm``): the share holds within
±3 points over 2,000 session ids, and the arm is sticky — the same for the same id, and a
session in the canary stays in it when the share grows (10 → 25 → 50 → 100)."""

import hashlib
import random
from itertools import pairwise

import pytest

from acf.domain.config_versions import canary_arm

_draw = random.Random(21)
SESSIONS = [f"{_draw.getrandbits(128):032x}" for _ in range(2000)]
"""Shaped like ``new_id()``'s session ids, but fixed: the bound is checked on the same ids
every run (random ones would miss ±3 points now and then by chance alone)."""


@pytest.mark.parametrize("share", [1, 10, 25, 50, 75, 90])
def test_share_within_three_points(share: int) -> None:
    inside = sum(canary_arm(s, share) for s in SESSIONS)
    assert abs(inside / len(SESSIONS) * 100 - share) <= 3, inside


def test_none_at_zero_all_at_hundred() -> None:
    assert not any(canary_arm(s, 0) for s in SESSIONS)
    assert all(canary_arm(s, 100) for s in SESSIONS)


def test_sticky_for_the_same_id() -> None:
    first = [canary_arm(s, 25) for s in SESSIONS]
    assert [canary_arm(s, 25) for s in SESSIONS] == first
    assert [canary_arm(s, 25) for s in reversed(SESSIONS)] == first[::-1]


def test_a_canary_session_stays_in_as_the_share_grows() -> None:
    steps = (10, 25, 50, 100)
    for smaller, larger in pairwise(steps):
        for s in SESSIONS:
            if canary_arm(s, smaller):
                assert canary_arm(s, larger), (s, smaller, larger)


def test_fixed_ids_land_where_they_always_did() -> None:
    # sha256(id)[:8 hex] as an integer mod 100: the arm never depends on a process, a seed
    # or the order sessions opened in.
    for sid in ("session-a", "session-b", "01HZY3Q0000000000000000000"):
        bucket = int(hashlib.sha256(sid.encode()).hexdigest()[:8], 16) % 100
        assert canary_arm(sid, bucket) is False
        assert canary_arm(sid, bucket + 1) is True
