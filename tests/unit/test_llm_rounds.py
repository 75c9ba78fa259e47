"""A round of tool calls interrupted by a confirmation: stored whole, replayed with the
settlement so that every tool call id has its reply."""

import json

import pytest

from acf.pipelines.llm.rounds import (
    AWAITING,
    NOT_RUN,
    PendingRound,
    from_state,
    settlement_reply,
    to_state,
)

ASSISTANT = {
    "role": "assistant",
    "content": "Let me check, then refund.",
    "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "refund", "arguments": "{}"}},
        {"id": "c", "type": "function", "function": {"name": "ticket", "arguments": "{}"}},
    ],
}
LOOKED_UP = {"role": "tool", "tool_call_id": "a", "content": '{"outcome": "ok"}'}
ROUND = PendingRound(ASSISTANT, (LOOKED_UP,), "b", "refund", {"order_id": "7"})


def test_the_replay_answers_every_call_id_in_order() -> None:
    replayed = ROUND.replay({"confirmation": "yes", "outcome": "ok"})
    assert replayed[0] == ASSISTANT
    assert [m["tool_call_id"] for m in replayed[1:]] == ["a", "b", "c"]
    assert replayed[1] == LOOKED_UP
    assert json.loads(replayed[2]["content"]) == {"confirmation": "yes", "outcome": "ok"}
    assert json.loads(replayed[3]["content"]) == NOT_RUN  # a call without a stored reply


def test_a_round_survives_the_session_state() -> None:
    stored = json.loads(json.dumps({"round": to_state(ROUND)}))["round"]
    assert isinstance(stored, str)  # a merge patch replaces a text whole
    again = from_state(stored)
    assert again == PendingRound(ASSISTANT, (LOOKED_UP,), "b", "refund", {"order_id": "7"})
    assert again is not None and again.replay(AWAITING) == ROUND.replay(AWAITING)


@pytest.mark.parametrize(
    "raw", [None, "x", "[]", {}, {"assistant": {}}, '{"pending_call_id": "b"}']
)
def test_an_unreadable_round_reads_as_none(raw: object) -> None:
    assert from_state(raw) is None


@pytest.mark.parametrize(
    ("settled", "value", "done_at", "expected"),
    [
        (
            {"answer": "no", "outcome": None},
            None,
            None,
            {"confirmation": "no", "outcome": "not_run"},
        ),
        ({"answer": "expired"}, None, None, {"confirmation": "expired", "outcome": "not_run"}),
        (
            {"answer": "yes", "outcome": "ok"},
            {"refund": "R-1"},
            0,
            {
                "confirmation": "yes",
                "outcome": "ok",
                "value": {"refund": "R-1"},
                "done_at": "1970-01-01T00:00Z",
                "done_at_ms": 0,
            },
        ),
        (
            {"answer": "yes", "outcome": "already_done"},
            None,
            None,
            {"confirmation": "yes", "outcome": "already_done"},
        ),
        (
            {"answer": "yes", "outcome": None},
            None,
            None,
            {"confirmation": "yes", "outcome": "failed"},
        ),
    ],
)
def test_settlement_replies(
    settled: dict[str, object], value: object, done_at: int | None, expected: dict[str, object]
) -> None:
    reply = settlement_reply(settled, value, done_at)
    note = reply.pop("note")
    assert reply == expected
    if expected["outcome"] == "already_done":
        assert "already done" in note and "NOT done again" in note
    if settled["answer"] == "no":
        assert "said no" in note
