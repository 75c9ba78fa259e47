"""The rule that moves a session to the live configuration version at a turn's start
(``acf.service.pinning``), as a table, and what it reads from the session's state."""

import pytest

from acf.domain.config_versions import ApplyMode
from acf.service.pinning import (
    VersionView,
    overrides_of,
    repin_reason,
    scenario_of,
    upcasts,
)

CLOSE, NEXT = ApplyMode.SESSION_CLOSE, ApplyMode.NEXT_TURN


@pytest.mark.parametrize(
    ("pinned", "rolled_back", "view", "expected"),
    [
        (1, False, VersionView(None), None),  # the tenant has no live version
        (2, False, VersionView(2, CLOSE), None),  # on live already
        (2, True, VersionView(2, CLOSE), None),  # on live (its flag is stale): stays
        (1, False, VersionView(2, CLOSE), None),  # session_close: keeps v1 until it closes
        (1, True, VersionView(2, CLOSE), "rolled_back"),
        (1, False, VersionView(2, NEXT), "next_turn"),
        (1, True, VersionView(2, NEXT), "rolled_back"),
        (3, False, VersionView(2, NEXT, canary=3), None),  # the canary's sessions stay
        (3, True, VersionView(2, NEXT, canary=3), "rolled_back"),
        (None, False, VersionView(2, CLOSE), "unpinned"),
    ],
)
def test_repin_reason(
    pinned: int | None, rolled_back: bool, view: VersionView, expected: str | None
) -> None:
    assert repin_reason(pinned, rolled_back, view) == expected


def test_only_a_next_turn_move_upcasts_the_state() -> None:
    assert upcasts("next_turn")
    assert not upcasts("rolled_back")
    assert not upcasts("unpinned")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, (None, None)),
        ({"scenario": "refund", "step": "collect"}, ("refund", "collect")),
        ({"scenario": "refund"}, ("refund", None)),
        ({"step": "collect"}, (None, None)),  # a step without its scenario says nothing
        ({"scenario": "", "step": "x"}, (None, None)),
        ({"scenario": 3}, (None, None)),
        ({"data": {"scenario": "refund", "step": "pay"}}, (None, None)),  # the pipeline's own
    ],
)
def test_scenario_of(state: dict[str, object], expected: tuple[str | None, str | None]) -> None:
    assert scenario_of(state) == expected


def test_overrides_of() -> None:
    assert overrides_of({}) == {}
    assert overrides_of({"config_overrides": {"settings.deadline_ms": 5}}) == {
        "settings.deadline_ms": 5
    }
    assert overrides_of({"config_overrides": "nonsense"}) == {}
