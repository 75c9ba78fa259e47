"""The units of work a turn commits: guards first, the right move, nothing missing."""

from typing import Any

import pytest

from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, FlagSession, PatchState
from acf.ports.timers import CancelTimer, SetTimer
from acf.ports.turn_store import CreateTurn, MoveTurn, OpenGroup, SaveTurnRecord, UpdateGroup
from acf.service import turn_ending_units as e
from acf.service import turn_progress_units as u

V = u.Versions("acf/0 p/1", "sha256:x")
TURN = Turn("t", "turn1", "s", "g", TurnPhase.RUNNING, 2, 5, 1, 7, False, "trace", 0, 0)
ACC = Turn("t", "turn1", "s", "g", TurnPhase.ACCUMULATING, 2, 5, 0, 7, False, "trace", 0, 0)
GROUP = TurnGroup("t", "g", "s", GroupStatus.OPEN, 1, 2, 0)
RESTART = u.new_accumulating_turn(
    session_id="s",
    tenant="t",
    turn_id="turn2",
    group_id="g",
    trace_id="trace",
    from_seq=2,
    last_seq=6,
    fence=8,
    at_ms=10,
)


def commit(result: PipelineResult, state_version: int, require_last_seq: bool) -> Any:
    return e.commit(
        turn=TURN,
        group=GROUP,
        fence=8,
        result=result,
        state_version=state_version,
        require_last_seq=require_last_seq,
        started_at_ms=0,
        at_ms=10,
        versions=V,
    )


def supersede(reason: str) -> Any:
    return e.supersede(
        turn=TURN,
        group=GROUP,
        fence=8,
        restart=RESTART,
        close_at_ms=20,
        reason=reason,
        started_at_ms=0,
        at_ms=10,
        versions=V,
    )


def fail(error: str, fallback_text: str) -> Any:
    return e.fail(
        turn=TURN,
        group=GROUP,
        fence=8,
        error=error,
        fallback_text=fallback_text,
        started_at_ms=0,
        at_ms=10,
        versions=V,
    )


def kinds(ops: list[Any]) -> list[type]:
    return [type(op) for op in ops]


def move(ops: list[Any]) -> MoveTurn:
    (found,) = [op for op in ops if isinstance(op, MoveTurn)]
    return found


UNITS = [
    ("start_run", u.start_run(ACC, GROUP, 8, 6, "complete", 10, V), TurnPhase.RUNNING),
    ("rerun", u.rerun(TURN, GROUP, 8, "retry", 10, V), TurnPhase.RUNNING),
    ("absorb", u.absorb(TURN, 8, 6, 10, V), TurnPhase.RUNNING),
    (
        "commit",
        commit(PipelineResult.reply("hi"), 3, True),
        TurnPhase.COMMITTED,
    ),
    ("supersede", supersede("new"), TurnPhase.SUPERSEDED),
    ("fail", fail("boom", "sorry"), TurnPhase.FAILED),
]


@pytest.mark.parametrize(("ops", "target"), [c[1:] for c in UNITS], ids=[c[0] for c in UNITS])
def test_every_unit_is_fenced_and_moves_by_compare_and_set(
    ops: list[Any], target: TurnPhase
) -> None:
    assert isinstance(ops[0], CheckFence) and ops[0].fence == 8
    m = move(ops)
    assert m.target is target
    # The row's fence is compared; the holder's fence is the one the lease must have.
    assert (m.fence, m.new_fence) == (7, 8)


def test_start_run_records_the_attempt_and_fixes_the_range() -> None:
    ops = u.start_run(ACC, GROUP, 8, 6, "complete", 10, V)
    m = move(ops)
    assert (m.expected, m.to_seq, m.new_attempt) == (TurnPhase.ACCUMULATING, 6, 1)
    (group,) = [op for op in ops if isinstance(op, UpdateGroup)]
    assert group.attempts == GROUP.attempts + 1
    assert CancelTimer in kinds(ops)


def test_commit_carries_every_effect_in_one_unit() -> None:
    result = PipelineResult(
        segments=(ReplySegment("a"), ReplySegment("b")),
        state_patch={"data": {"k": 1}},
        handoff="asked for a person",
    )
    ops = commit(result, 3, True)
    types = kinds(ops)
    assert types.count(EnqueueReply) == 2
    assert [op.position for op in ops if isinstance(op, EnqueueReply)] == [0, 1]
    (patch,) = [op for op in ops if isinstance(op, PatchState)]
    assert patch.expected_version == 3
    assert FlagSession in types and SaveTurnRecord in types
    (consume,) = [op for op in ops if isinstance(op, ConsumeRange)]
    assert (consume.from_seq, consume.to_seq, consume.require_last_seq) == (2, 5, True)
    (group,) = [op for op in ops if isinstance(op, UpdateGroup)]
    assert group.status is GroupStatus.COMMITTED


def test_queue_commit_does_not_require_last_seq() -> None:
    ops = commit(PipelineResult.reply("x"), 0, False)
    (consume,) = [op for op in ops if isinstance(op, ConsumeRange)]
    assert not consume.require_last_seq


def test_supersede_commits_no_effect_and_opens_the_restart_in_the_same_group() -> None:
    ops = supersede("new_messages")
    types = kinds(ops)
    assert EnqueueReply not in types and PatchState not in types and ConsumeRange not in types
    (created,) = [op for op in ops if isinstance(op, CreateTurn)]
    assert created.turn.group_id == TURN.group_id and created.turn.from_seq == TURN.from_seq
    (timer,) = [op for op in ops if isinstance(op, SetTimer)]
    assert timer.timer.payload["window_from_seq"] == TURN.to_seq  # only unseen messages
    (group,) = [op for op in ops if isinstance(op, UpdateGroup)]
    assert group.restarts == GROUP.restarts + 1


def test_fail_consumes_the_range_queues_the_fallback_and_flags() -> None:
    ops = fail("boom", "Sorry, a person will follow up.")
    (reply,) = [op for op in ops if isinstance(op, EnqueueReply)]
    assert reply.payload["text"] == "Sorry, a person will follow up."
    (consume,) = [op for op in ops if isinstance(op, ConsumeRange)]
    assert not consume.require_last_seq
    assert FlagSession in kinds(ops)


def test_open_window_creates_group_turn_and_timer() -> None:
    ops = u.open_window(RESTART, GROUP, 500, "default", V)
    assert kinds(ops)[:4] == [CheckFence, OpenGroup, CreateTurn, SetTimer]


@pytest.mark.parametrize(("name", "ops", "target"), UNITS, ids=[c[0] for c in UNITS])
def test_every_event_carries_the_versions(name: str, ops: list[Any], target: TurnPhase) -> None:
    for op in ops:
        if isinstance(op, AppendEvent):
            c = op.event.correlation
            assert (c.agent_version, c.config_version) == (V.agent_version, V.config_version)
            assert c.turn_id is not None and c.group_id is not None
