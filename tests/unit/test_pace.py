"""Table tests of the customer's pace (``acf.domain.pace``): which gaps count, the smoothed
estimate, the window it gives, and how it is kept in the session state."""

from dataclasses import replace

import pytest

from acf.domain.errors import StateContractError
from acf.domain.pace import (
    MIN_SAMPLES,
    Pace,
    from_state,
    observe,
    pace_patch,
    to_state,
    window_for,
)
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.state import apply_patch, initial_state

CAP = 4000
POLICY = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000, pace=True)
# After the first turn below: 0, 300, 600 received, the reply committed at 2000.
FIRST = Pace(2, 300.0, 112.5, last_at_ms=600, replied_at_ms=2000)


OBSERVE = [
    # id, pace before, messages received at, reply committed at, pace after
    ("no pace, one message", None, [0], 900, Pace(0, 0.0, 0.0, 0, 900)),
    ("no pace, no message (a replay)", None, [], 900, Pace(0, 0.0, 0.0, None, 900)),
    # the first gap sets the estimate (spread: half the gap); the next smooths it
    ("a burst of three", None, [0, 300, 600], 2000, FIRST),
    # the customer's answer to a reply is not a fragment gap
    (
        "a gap across a reply",
        FIRST,
        [5000],
        6500,
        replace(FIRST, last_at_ms=5000, replied_at_ms=6500),
    ),
    # 400 after 300: gap 300 + 100 / 4, spread 112.5 + (100 - 112.5) / 4
    (
        "a gap after the reply counts",
        FIRST,
        [5000, 5400],
        6500,
        Pace(3, 325.0, 109.375, 5400, 6500),
    ),
    # a message that came before the last reply (it queued behind that turn): its gap from
    # the previous message counts (900), the one across the reply does not
    ("a queued message", FIRST, [1500, 2500], 4000, Pace(3, 450.0, 234.375, 2500, 4000)),
    ("a gap at the cap counts", Pace(), [0, CAP], 9000, Pace(1, float(CAP), CAP / 2, CAP, 9000)),
    ("a gap over the cap does not", Pace(), [0, CAP + 1], 9000, Pace(0, 0.0, 0.0, CAP + 1, 9000)),
    ("out of order: ignored", Pace(), [500, 400], 9000, Pace(0, 0.0, 0.0, 400, 9000)),
    # a commit that sent nothing (it expects more input) is no reply: the last one stays,
    # and the customer's next fragment, 700 ms on, is a gap of the same thought
    ("no reply sent", None, [0], None, Pace(0, 0.0, 0.0, 0, None)),
    (
        "a gap after a commit that sent nothing counts",
        Pace(0, 0.0, 0.0, 0, None),
        [700],
        1500,
        Pace(1, 700.0, 350.0, 700, 1500),
    ),
    ("no reply keeps the last one", FIRST, [2500], None, replace(FIRST, last_at_ms=2500)),
]


@pytest.mark.parametrize(
    ("before", "received", "replied", "after"),
    [c[1:] for c in OBSERVE],
    ids=[c[0] for c in OBSERVE],
)
def test_observe(
    before: Pace | None, received: list[int], replied: int | None, after: Pace
) -> None:
    assert observe(before, received, replied, CAP) == after


def test_the_estimate_follows_a_change_of_pace() -> None:
    """A customer who fragments at 2 s, then at 300 ms: the window follows, the spread first
    growing with the surprise, then both shrinking."""
    pace: Pace | None = None
    at = 0
    for _ in range(4):
        pace = observe(pace, [at, at + 2000], at + 2500, CAP)
        at += 10_000
    assert pace is not None
    assert (pace.samples, pace.gap_ms, pace.spread_ms) == (4, 2000.0, 421.875)
    assert window_for(pace, POLICY) == 2844  # 2000 + 2 * 421.875
    windows = []
    for _ in range(8):
        pace = observe(pace, [at, at + 300], at + 1000, CAP)
        windows.append(window_for(pace, POLICY))
        at += 10_000
    assert windows[0] == 3058  # the spread jumps: gap 1575, spread 741.4
    assert windows[1:] == sorted(windows[1:], reverse=True)
    assert windows[-1] == 1462


@pytest.mark.parametrize(
    ("pace", "window"),
    [
        (Pace(MIN_SAMPLES - 1, 900.0, 100.0), None),
        (Pace(MIN_SAMPLES, 900.0, 100.0), 1100),
        (Pace(MIN_SAMPLES, 900.4, 0.0), 900),
        (Pace(10, 100.0, 50.0), 400),  # not below min_window_ms
        (Pace(10, 3500.0, 500.0), 4000),  # not above max_window_ms
    ],
)
def test_window_for(pace: Pace, window: int | None) -> None:
    assert window_for(pace, POLICY) == window


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "fast",
        {},
        {"samples": 3},
        {"samples": "x", "gap_ms": 1, "spread_ms": 1},
        {"samples": 3, "gap_ms": 1.0, "spread_ms": 1.0, "last_at_ms": [1]},
    ],
)
def test_from_state_refuses_what_is_not_a_pace(stored: object) -> None:
    assert from_state(stored) is None


@pytest.mark.parametrize(
    "pace", [Pace(), FIRST, Pace(7, 812.3, 120.0, None, 5), Pace(1, 0.0, 0.0, 10, None)]
)
def test_state_round_trip(pace: Pace) -> None:
    assert from_state(to_state(pace)) == pace


def test_the_patch_keeps_the_pace_in_the_state_meta() -> None:
    state = initial_state()
    for received, replied in (([0, 300, 600], 2000), ([5000, 5300], 6000)):
        patch = pace_patch(state["meta"], POLICY, received, replied)
        assert patch is not None
        state = apply_patch(state, patch)  # validated against the state contract
    assert state["meta"]["pace"] == to_state(observe(FIRST, [5000, 5300], 6000, CAP))
    assert state["meta"]["pace"]["samples"] == 3


def test_no_patch_when_pace_is_off() -> None:
    assert pace_patch({}, replace(POLICY, pace=False), [0, 300], 900) is None


def test_no_patch_when_nothing_changes() -> None:
    """A commit with no message and no reply (nothing learned) writes no state."""
    meta = {"pace": to_state(FIRST)}
    assert pace_patch(meta, POLICY, [], None) is None
    assert pace_patch(meta, POLICY, [], 2500) == {
        "meta": {"pace": to_state(replace(FIRST, replied_at_ms=2500))}
    }


def test_the_state_contract_checks_a_pace() -> None:
    with pytest.raises(StateContractError):
        apply_patch(initial_state(), {"meta": {"pace": {"samples": 1, "gap": 3}}})
