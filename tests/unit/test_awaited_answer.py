"""An awaited answer (``PipelineResult.awaiting_answer``): the window rule closes at once on
the customer's next message in an adaptive window, whatever its text or typing, and the
commit's state patch sets and clears ``meta.awaiting_answer`` (table tests)."""

from typing import Any

import pytest

from acf.domain.accumulation import CloseReason, Typing, WindowMessage, decide
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.state import apply_patch, initial_state
from acf.service.turn_ending_units import awaiting_patch

ADAPTIVE = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000)
FIXED = ChannelPolicy(AccumulationMode.FIXED, 1500, 1500, 6000, 0)
TYPING = Typing(True, 1000)


@pytest.mark.parametrize(
    ("policy", "texts", "typing", "awaiting", "expected"),
    [
        (ADAPTIVE, ["so"], None, True, (1000, CloseReason.AWAITED_ANSWER)),
        (ADAPTIVE, ["1234", "and"], TYPING, True, (1000, CloseReason.AWAITED_ANSWER)),
        (ADAPTIVE, ["so"], None, False, (2200, CloseReason.DEFAULT)),
        (ADAPTIVE, ["1234", "and"], TYPING, False, (4900, CloseReason.CAP)),
        (FIXED, ["so"], None, True, (2500, CloseReason.FIXED)),
    ],
)
def test_the_window_rule(
    policy: ChannelPolicy,
    texts: list[str],
    typing: Typing | None,
    awaiting: bool,
    expected: tuple[int, CloseReason],
) -> None:
    window = [WindowMessage(1000 - 100 * (len(texts) - 1 - i), t) for i, t in enumerate(texts)]
    decision = decide(policy, window, typing, False, 1000, awaiting_answer=awaiting)
    assert (decision.close_at_ms, decision.reason) == expected


def awaited(value: bool | None) -> dict[str, Any]:
    state = initial_state()
    return state if value is None else apply_patch(state, {"meta": {"awaiting_answer": value}})


@pytest.mark.parametrize(
    ("before", "awaits", "patch", "after"),
    [
        (None, True, {"meta": {"awaiting_answer": True}}, True),
        (True, True, None, True),
        (True, False, {"meta": {"awaiting_answer": None}}, None),
        (None, False, None, None),
    ],
)
def test_the_state_patch(
    before: bool | None, awaits: bool, patch: dict[str, Any] | None, after: bool | None
) -> None:
    state = awaited(before)
    assert awaiting_patch(state, awaits) == patch
    updated = state if patch is None else apply_patch(state, patch)
    assert updated["meta"].get("awaiting_answer") is after
    assert ("awaiting_answer" in updated["meta"]) is (after is not None)
