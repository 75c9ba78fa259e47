"""Dead letters of the agent service pipeline (``acf.pipelines.agent_service.replays``):
what a failed execution's letter keeps (the body without ``supersedes``, its key and agent
session), what a REPLAY turn reads back, and on which row and agent session it goes."""

from dataclasses import replace
from typing import Any

import pytest

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.messages import InboundMessage
from acf.domain.session_key import SessionKey
from acf.pipelines.agent_service.asks import SessionPlan
from acf.pipelines.agent_service.protocol import (
    Answer,
    CustomerMessage,
    ExecuteRequest,
    UserContext,
)
from acf.pipelines.agent_service.replays import (
    Replayed,
    replay_plan,
    replayed_execution,
    request_record,
)
from acf.ports.dead_letters import DeadLetter

S = AgentSessionStatus
KEY = SessionKey("acme", "support", "alice", "web")
LETTER = DeadLetter(
    tenant="acme",
    dead_letter_id="d1",
    session_id="s1",
    agent="support",
    turn_id="t0",
    group_id="g0",
    trace_id="0" * 31 + "1",
    pipeline="agent_service",
    error="HTTP 503",
    attempts=4,
    created_at_ms=1,
)


def test_a_failed_execution_keeps_its_key_and_agent_session() -> None:
    request = ExecuteRequest(
        conversation_id="s1",
        message=CustomerMessage(text="M"),
        user_context=UserContext(tenant="acme"),
        answer=Answer(ask_id="ask-1", text="M"),
        supersedes="k0",
    )
    record = request_record(request, "k1", "as-1")
    assert record == {
        "conversation_id": "s1",
        "message": {"text": "M"},
        "chat_history": [],
        "user_context": {"tenant": "acme"},
        "answer": {"ask_id": "ask-1", "text": "M"},
        "execution_key": "k1",
        "agent_session_id": "as-1",
    }
    # What a replay reads back of it.
    letter = replace(LETTER, request=record)
    assert replayed_execution(letter, []) == Replayed("k1", "as-1", "ask-1")
    # The service never named one: the replay asks for a new agent session again.
    fresh = request_record(request, "k2", None)
    assert fresh["agent_session_id"] is None
    assert replayed_execution(replace(LETTER, request=fresh), []) == Replayed("k2", None, "ask-1")


@pytest.mark.parametrize(
    "request_",
    [
        {"messages": ["Cancel order 7"]},  # a turn that failed outside an execution
        {"message": {"text": "hi"}, "execution_key": ""},
        {"message": {"text": "hi"}, "execution_key": 7},
    ],
)
def test_a_letter_without_an_execution_is_replayed_as_a_new_one(request_: dict[str, Any]) -> None:
    assert replayed_execution(replace(LETTER, request=request_), []) is None


def test_only_a_replay_turn_replays() -> None:
    letter = replace(LETTER, request={"execution_key": "k1"})
    assert replayed_execution(None, []) is None
    newer = InboundMessage("m1", "s1", KEY, 1, "p1", 1000, text="hello")
    assert replayed_execution(letter, [newer]) is None  # messages: not a REPLAY turn


def row(**changes: Any) -> AgentSessionRow:
    base = AgentSessionRow(
        tenant="acme",
        row_id="r-failed",
        session_id="s1",
        agent="support",
        profile="support",
        status=S.FAILED,
        created_at_ms=0,
        last_interaction_at_ms=10,
        agent_session_id="as-1",
        execution_key="k1",
    )
    return replace(base, **changes)


FAILED = row()
OPEN = row(row_id="r-open", status=S.ACTIVE, execution_key="k9", agent_session_id="as-2")
DONE = row(row_id="r-done", status=S.COMPLETED, execution_key="k8", agent_session_id="as-2")


@pytest.mark.parametrize(
    ("plan", "latest", "expected_row"),
    [
        # Nothing open, the failed row is the latest: the replay goes on it.
        (SessionPlan(None, None), FAILED, FAILED),
        # An open row: the replay goes on it (one open row per conversation).
        (SessionPlan(OPEN, "as-2"), FAILED, OPEN),
        # The conversation moved on to another agent session: a new row.
        (SessionPlan(DONE, "as-2"), DONE, None),
        # ... unless it is the same agent session.
        (SessionPlan(replace(DONE, agent_session_id="as-1"), "as-1"), DONE, "resumed"),
        # The latest row holds the key but is another profile's: a new row.
        (SessionPlan(None, None), replace(FAILED, profile="billing"), None),
        (SessionPlan(None, None), None, None),
    ],
)
def test_the_replay_plan(
    plan: SessionPlan, latest: AgentSessionRow | None, expected_row: object
) -> None:
    replayed = Replayed("k1", "as-1", "ask-1")
    planned = replay_plan(plan, latest, replayed, "support")
    assert (planned.agent_session_id, planned.answer_to) == ("as-1", "ask-1")
    assert planned.row == (plan.row if expected_row == "resumed" else expected_row)
