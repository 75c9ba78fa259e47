"""The units a turn commits when its session leaves agent mode, and the handoff triggers of
its end (pure): table tests of ``turn_ending_units.stand_down``, the silent commit and
failure, ``turn_triggers`` and ``turn_leaves.handover_patch``."""

from typing import Any

import pytest

from acf.domain.config_versions import RecordFacts
from acf.domain.events import Correlation, EventKind
from acf.domain.handoff import HandoffPolicy
from acf.domain.modes import SessionMode
from acf.domain.records import TurnRecord
from acf.domain.replies import PipelineResult
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.handoffs import EnterHuman, HandoffSource
from acf.ports.lease import CheckFence
from acf.ports.ledger import FinishExecution, LedgerEntry
from acf.ports.outbox import EnqueueReply
from acf.ports.session_modes import CountFallback
from acf.ports.session_store import ConsumeRange
from acf.ports.timers import CancelTimer, SetTimer
from acf.ports.turn_store import CreateTurn, MoveTurn, SaveTurnRecord, UpdateGroup
from acf.service import turn_ending_units as e
from acf.service import turn_progress_units as u
from acf.service import turn_triggers as tr
from acf.service.turn_leaves import handover_patch

V = u.Versions("acf/0 p/1", "sha256:x")
TURN = Turn("t", "turn1", "s", "g", TurnPhase.RUNNING, 2, 5, 1, 7, False, "trace", 100, 0)
ACC = Turn("t", "turn1", "s", "g", TurnPhase.ACCUMULATING, 2, 5, 0, 7, False, "trace", 100, 0)
GROUP = TurnGroup("t", "g", "s", GroupStatus.OPEN, 1, 2, 0)


def only(ops: list[Any], kind: type) -> Any:
    (found,) = [op for op in ops if isinstance(op, kind)]
    return found


def events(ops: list[Any]) -> dict[EventKind, dict[str, Any]]:
    return {op.event.kind: dict(op.event.data) for op in ops if isinstance(op, AppendEvent)}


@pytest.mark.parametrize("live", [TURN, ACC], ids=["running", "accumulating"])
def test_a_stand_down_ends_the_live_turn_without_anything_else(live: Turn) -> None:
    ops = e.stand_down(live, 8, V, 10, SessionMode.HUMAN, 4)
    assert isinstance(ops[0], CheckFence) and ops[0].fence == 8
    move = only(ops, MoveTurn)
    assert (move.expected, move.target, move.fence, move.new_fence) == (
        live.phase,
        TurnPhase.SUPERSEDED,
        7,
        8,
    )
    group = only(ops, UpdateGroup)
    assert (group.group_id, group.status) == ("g", GroupStatus.HANDED_OFF)
    record = only(ops, SaveTurnRecord).record
    assert (record.outcome, record.replies, record.started_at_ms) == (TurnPhase.SUPERSEDED, (), 4)
    assert record.details == {"reason": "mode", "mode": "human"}
    superseded = events(ops)[EventKind.TURN_SUPERSEDED]
    assert (superseded["reason"], superseded["mode"], superseded["run_ms"]) == ("mode", "human", 6)
    # No reply, no restart, no new window, nothing consumed.
    for absent in (EnqueueReply, CreateTurn, SetTimer, ConsumeRange):
        assert not any(isinstance(op, absent) for op in ops), absent
    cancelled = [op for op in ops if isinstance(op, CancelTimer)]
    assert len(cancelled) == (1 if live.phase is TurnPhase.ACCUMULATING else 0)


def test_a_stand_down_without_a_start_counts_from_the_turns_creation() -> None:
    record = only(e.stand_down(ACC, 8, V, 150, SessionMode.BLOCKED), SaveTurnRecord).record
    assert record.started_at_ms == ACC.created_at_ms


def entry(policy: SideEffectPolicy) -> LedgerEntry:
    return LedgerEntry(
        tenant="t",
        execution_id=f"x-{policy.value}",
        idempotency_key="k",
        tool="refund",
        policy=policy,
        status=LedgerStatus.STARTED,
        session_id="s",
        group_id="g",
        turn_id="turn1",
        customer="c",
        args={},
        started_at_ms=5,
    )


def test_a_stand_down_settles_the_calls_it_cut_off() -> None:
    unfinished = [entry(SideEffectPolicy.IRREVERSIBLE), entry(SideEffectPolicy.PURE)]
    ops = e.stand_down(TURN, 8, V, 10, SessionMode.HUMAN, 4, unfinished=unfinished)
    settled = {op.execution_id: op.status for op in ops if isinstance(op, FinishExecution)}
    assert settled == {"x-irreversible": LedgerStatus.IN_DOUBT, "x-pure": LedgerStatus.FAILED}
    assert events(ops)[EventKind.TOOL_IN_DOUBT]["reason"] == "turn_stood_down"


def commit(silent: bool) -> list[Any]:
    return e.commit(
        turn=TURN,
        group=GROUP,
        fence=8,
        result=PipelineResult.reply("hi", state_patch={"data": {"k": 1}}),
        state_version=3,
        require_last_seq=False,
        started_at_ms=0,
        at_ms=10,
        versions=V,
        silent=silent,
    )


def test_an_agent_commit_consumes_in_agent_mode_only() -> None:
    ops = commit(silent=False)
    assert only(ops, ConsumeRange).mode is SessionMode.AGENT
    assert only(ops, EnqueueReply).payload["text"] == "hi"
    assert "withheld_replies" not in only(ops, SaveTurnRecord).record.details


def test_a_silent_commit_keeps_the_effects_and_withholds_the_reply() -> None:
    ops = commit(silent=True)
    assert only(ops, ConsumeRange).mode is None
    assert not any(isinstance(op, EnqueueReply) for op in ops)
    record = only(ops, SaveTurnRecord).record
    assert record.replies == () and record.details["withheld_replies"] == ["hi"]
    kinds = events(ops)
    assert EventKind.RESPONSE_QUEUED not in kinds
    assert (
        kinds[EventKind.TURN_COMMITTED]["replies"],
        kinds[EventKind.TURN_COMMITTED]["withheld"],
    ) == (0, 1)
    assert only(ops, UpdateGroup).status is GroupStatus.COMMITTED


@pytest.mark.parametrize("silent", [False, True])
def test_a_failure_withholds_its_fallback_when_silent(silent: bool) -> None:
    ops = e.fail(
        turn=TURN,
        group=GROUP,
        fence=8,
        error="boom",
        fallback_text="sorry",
        started_at_ms=0,
        at_ms=10,
        versions=V,
        silent=silent,
    )
    assert only(ops, ConsumeRange).mode is (None if silent else SessionMode.AGENT)
    rows = [op for op in ops if isinstance(op, EnqueueReply)]
    record = only(ops, SaveTurnRecord).record
    if silent:
        assert rows == [] and record.replies == ()
        assert record.details["withheld_replies"] == ["sorry"]
    else:
        assert [r.payload["text"] for r in rows] == ["sorry"] and record.replies == ("sorry",)


def facts(fallback: bool = False, category: str | None = None) -> RecordFacts:
    return RecordFacts(category, fallback, False, 0)


POLICY = HandoffPolicy(notice="A person takes it from here.", after_fallbacks=3)

TRIGGERS = [
    ("an answer: nothing", None, facts(), 0, POLICY, []),
    (
        "the pipeline asks for a person",
        "angry customer",
        facts(),
        0,
        POLICY,
        [("pipeline", "angry customer")],
    ),
    ("a fallback is counted", None, facts(fallback=True), 0, POLICY, ["count"]),
    ("the second fallback of three", None, facts(fallback=True), 1, POLICY, ["count"]),
    (
        "the third fallback hands off",
        None,
        facts(fallback=True),
        2,
        POLICY,
        ["count", ("rule", "fallbacks")],
    ),
    (
        "past the threshold: again (a no-op in human mode)",
        None,
        facts(fallback=True),
        5,
        POLICY,
        ["count", ("rule", "fallbacks")],
    ),
    ("the rule off", None, facts(fallback=True), 9, HandoffPolicy(after_fallbacks=0), ["count"]),
    (
        "a threshold of one",
        None,
        facts(fallback=True),
        0,
        HandoffPolicy(after_fallbacks=1),
        ["count", ("rule", "fallbacks")],
    ),
    (
        "the pipeline's handoff wins over the rule's",
        "asked",
        facts(fallback=True),
        2,
        POLICY,
        [("pipeline", "asked"), "count"],
    ),
]


def described(ops: list[Any]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if isinstance(op, CountFallback):
            out.append("count")
        else:
            assert isinstance(op, EnterHuman)
            out.append((op.source.value, op.reason))
    return out


@pytest.mark.parametrize(
    ("handoff", "found", "fallbacks", "policy", "expected"),
    [c[1:] for c in TRIGGERS],
    ids=[c[0] for c in TRIGGERS],
)
def test_handoff_triggers(
    handoff: str | None,
    found: RecordFacts,
    fallbacks: int,
    policy: HandoffPolicy,
    expected: list[Any],
) -> None:
    ops = tr.handoff_ops(
        TURN, handoff=handoff, facts=found, fallbacks=fallbacks, policy=policy, at_ms=10
    )
    assert described(ops) == expected
    for op in ops:
        if isinstance(op, EnterHuman):
            assert (op.tenant, op.session_id, op.trace_id, op.at_ms) == ("t", "s", "trace", 10)
            assert op.notice == policy.notice and op.by is None
            assert op.source in (HandoffSource.PIPELINE, HandoffSource.RULE)


def test_a_refusal_that_starts_a_cooldown_marks_the_record() -> None:
    ops = commit(silent=False)
    record = only(ops, SaveTurnRecord).record
    marked = tr.as_abuse(ops)
    assert len(marked) == len(ops)
    details = only(marked, SaveTurnRecord).record.details
    assert details["category"] == "ABUSE_SUSPECTED" and details["abuse_of"] is None
    assert only(ops, SaveTurnRecord).record is record  # the unit given is left as it was


def test_the_record_is_found_in_every_ending_unit() -> None:
    assert isinstance(tr.record_in(commit(silent=False)), TurnRecord)
    with pytest.raises(ValueError, match="no turn record"):
        tr.record_in([])


HANDOVER = [
    ("no meta", {}, None),
    ("no note", {"meta": {"lane": "x"}}, None),
    (
        "a note to clear",
        {"meta": {"handover": {"note": "refund done", "by": "ann", "at_ms": 5}}},
        {"meta": {"handover": None}},
    ),
]


@pytest.mark.parametrize(
    ("state", "expected"), [c[1:] for c in HANDOVER], ids=[c[0] for c in HANDOVER]
)
def test_the_first_agent_commit_clears_the_handover_note(
    state: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    assert handover_patch(state) == expected


@pytest.mark.parametrize(
    ("outcome", "details", "counted"),
    [
        (TurnPhase.FAILED, {}, True),  # the fallback text went out
        (TurnPhase.COMMITTED, {"outcomes": ["fallback"]}, True),  # the rules' fallback reply
        (TurnPhase.COMMITTED, {"llm": {"outcome": "FAILED"}}, True),  # enforcement withheld
        (TurnPhase.COMMITTED, {"routing_reason": "fallback"}, False),  # another route answered
        (TurnPhase.FAILED, {"routing_reason": "fallback"}, True),  # ... and failed as well
        (TurnPhase.COMMITTED, {}, False),
    ],
)
def test_the_fallback_rule_counts_fallback_answers_not_a_routers_fallback(
    outcome: TurnPhase, details: dict[str, Any], counted: bool
) -> None:
    record = TurnRecord(
        Correlation("t1", "tr", "s1"), outcome, 0, 1, 1, 1_000, 1_100, details=details
    )
    assert tr.trigger_facts(record).fallback is counted
