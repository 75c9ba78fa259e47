"""The operator's reply as a unit: its payload, the range it answers, and its ops in order
(guards first, a live agent turn stood down, the HUMAN turn committed as it is created)."""

from typing import Any

import pytest

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.session_key import SessionKey
from acf.domain.turns import GroupStatus, Turn, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.handoffs import CheckClaim, MarkOperatorReply, Operator
from acf.ports.lease import CheckFence
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, SessionRecord, SessionStatus
from acf.ports.turn_store import CreateTurn, MoveTurn, OpenGroup, SaveTurnRecord, UpdateGroup
from acf.service.handoff_units import (
    LiveTurn,
    answered_through,
    human_reply,
    reply_payload,
)
from acf.service.turn_progress_units import Versions

ALICE = Operator("key-a", "Alice")
SESSION = SessionRecord(
    session_id="s",
    key=SessionKey("t", "support", "+1555", Channel.SMS),
    status=SessionStatus.OPEN,
    last_seq=7,
    consumed_seq=3,
    state={},
    state_version=4,
    flagged=False,
    flag_reason=None,
    created_at_ms=0,
    updated_at_ms=0,
    mode=SessionMode.HUMAN,
)
LIVE = Turn("t", "agent-turn", "s", "g0", TurnPhase.RUNNING, 3, 6, 1, 5, False, "tr0", 0, 0)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (None, 7),  # the newest message
        (5, 5),  # what the operator read
        (9, 7),  # never past the newest
        (1, 3),  # never before what is already answered: an empty range
        (3, 3),
    ],
)
def test_the_range_a_reply_answers(asked: int | None, expected: int) -> None:
    assert answered_through(SESSION, asked) == expected


def test_a_negative_answers_through_is_refused() -> None:
    with pytest.raises(InvalidValue, match="answers_through_seq"):
        answered_through(SESSION, -1)


def test_the_payload_is_an_agent_replys_shape_with_its_author() -> None:
    assert reply_payload("Hello", None, ALICE) == {
        "text": "Hello",
        "author": "operator",
        "operator": {"key_id": "key-a", "name": "Alice"},
    }
    long_title = "é" * 40  # 80 bytes: too long for an id on every channel
    payload = reply_payload("Pick one", [" Yes ", "No", long_title], ALICE)
    assert payload["buttons"] == [
        {"id": "Yes", "title": "Yes"},
        {"id": "No", "title": "No"},
        {"id": "option-3", "title": long_title},
    ]


@pytest.mark.parametrize(
    ("text", "buttons", "problem"),
    [
        ("  ", None, "text: an operator's reply needs text"),
        ("x" * 4_097, None, "text: at most 4096"),
        ("ok", [""], r"buttons\[0\]: a button needs a title"),
        ("ok", ["y" * 81], r"buttons\[0\]: at most 80"),
        ("ok", [str(n) for n in range(11)], "buttons: at most 10"),
        ("ok", ["Yes", "Yes"], "buttons: two buttons have the same title"),
    ],
)
def test_a_payload_that_cannot_go_out_is_refused(
    text: str, buttons: list[str] | None, problem: str
) -> None:
    with pytest.raises(InvalidValue, match=problem):
        reply_payload(text, buttons, ALICE)


def unit(live: LiveTurn | None = None, to_seq: int = 7) -> Any:
    return human_reply(
        session=SESSION,
        fence=9,
        by=ALICE,
        handoff_id="h1",
        payload=reply_payload("Your refund is on its way", None, ALICE),
        to_seq=to_seq,
        turn_id="human-turn",
        group_id="human-group",
        trace_id="trace-r",
        at_ms=50,
        claim_until_ms=950,
        live=live,
    )


def test_the_human_turn_unit_in_order() -> None:
    reply = unit()
    assert [type(op) for op in reply.ops] == [
        CheckFence,
        CheckClaim,
        OpenGroup,
        CreateTurn,
        EnqueueReply,
        SaveTurnRecord,
        ConsumeRange,
        AppendEvent,
        MarkOperatorReply,
        AppendEvent,
    ]
    fence, check, group, create, enqueue, record, consume, queued, mark, committed = reply.ops
    assert (fence.session_id, fence.fence) == ("s", 9)
    assert (check.session_id, check.by) == ("s", ALICE)
    assert group.group.status is GroupStatus.COMMITTED
    turn = create.turn
    assert turn == reply.turn
    assert (turn.kind, turn.phase, turn.from_seq, turn.to_seq, turn.fence) == (
        TurnKind.HUMAN,
        TurnPhase.COMMITTED,
        3,
        7,
        9,
    )
    assert enqueue is reply.enqueue
    assert (enqueue.turn_id, enqueue.position, enqueue.payload["author"]) == (
        "human-turn",
        0,
        "operator",
    )
    c = record.record.correlation
    assert (c.turn_id, c.group_id, c.trace_id, c.config_version, c.agent_version) == (
        "human-turn",
        "human-group",
        "trace-r",
        None,
        None,
    )
    assert record.record.details == {
        "kind": "human",
        "operator": {"key_id": "key-a", "name": "Alice"},
        "handoff_id": "h1",
    }
    assert record.record.replies == ("Your refund is on its way",)
    assert (consume.from_seq, consume.to_seq, consume.mode, consume.require_last_seq) == (
        3,
        7,
        SessionMode.HUMAN,
        False,
    )
    assert (mark.handoff_id, mark.claim_until_ms, mark.turn_id, mark.by) == (
        "h1",
        950,
        "human-turn",
        ALICE,
    )
    assert queued.event.kind is EventKind.RESPONSE_QUEUED
    assert committed.event.kind is EventKind.TURN_COMMITTED
    assert committed.event.data["kind"] == "human"


def test_a_live_agent_turn_is_stood_down_first_in_the_same_unit() -> None:
    reply = unit(LiveTurn(LIVE, Versions("agent/1", "v3")))
    kinds = [type(op) for op in reply.ops]
    assert kinds[:2] == [CheckFence, CheckClaim]
    moved = [op for op in reply.ops if isinstance(op, MoveTurn)]
    assert [(m.turn_id, m.target, m.new_fence) for m in moved] == [
        ("agent-turn", TurnPhase.SUPERSEDED, 9)
    ]
    handed = [op for op in reply.ops if isinstance(op, UpdateGroup)]
    assert [(u.group_id, u.status) for u in handed] == [("g0", GroupStatus.HANDED_OFF)]
    assert kinds.index(MoveTurn) < kinds.index(CreateTurn)
    superseded = [
        op.event
        for op in reply.ops
        if isinstance(op, AppendEvent) and op.event.kind is EventKind.TURN_SUPERSEDED
    ]
    assert [e.correlation.config_version for e in superseded] == ["v3"]
