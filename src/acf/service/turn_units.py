"""The units of work a turn commits, built as values (pure: no I/O, table-testable).

Each unit starts with ``CheckFence`` and moves the turn by compare-and-set, so a holder
whose lease expired or was taken over commits nothing (DESIGN §3 invariants 3 and 5).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import GroupId, SessionId, TraceId, TurnId
from acf.domain.records import TurnRecord
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, FlagSession, PatchState
from acf.ports.timers import CancelTimer, SetTimer, Timer
from acf.ports.turn_store import CreateTurn, MoveTurn, OpenGroup, SaveTurnRecord, UpdateGroup
from acf.ports.unit_of_work import WriteOp

WINDOW_TIMER = "window_close"

Ops = list[WriteOp[Any]]


@dataclass(frozen=True, slots=True)
class Versions:
    agent_version: str
    config_version: str


def correlation(turn: Turn, versions: Versions) -> Correlation:
    return Correlation(
        tenant=turn.tenant,
        trace_id=turn.trace_id,
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        group_id=turn.group_id,
        agent_version=versions.agent_version,
        config_version=versions.config_version,
    )


def _event(kind: EventKind, turn: Turn, versions: Versions, at_ms: int, **data: Any) -> AppendEvent:
    return AppendEvent(FabricEvent(kind, at_ms, correlation(turn, versions), data))


def _guard(turn: Turn, fence: int, at_ms: int) -> CheckFence:
    return CheckFence(turn.session_id, fence, at_ms)


def _move(
    turn: Turn,
    target: TurnPhase,
    fence: int,
    at_ms: int,
    to_seq: int | None = None,
    new_attempt: int | None = None,
) -> MoveTurn:
    # new_fence: the holder's fence; it differs from the row's when a recovery adopts a turn.
    return MoveTurn(
        turn.turn_id, turn.phase, target, turn.fence, at_ms, to_seq, new_attempt, new_fence=fence
    )


def window_timer(turn: Turn, close_at_ms: int, window_from_seq: int) -> Timer:
    return Timer(
        turn.tenant,
        turn.session_id,
        WINDOW_TIMER,
        close_at_ms,
        {"turn_id": turn.turn_id, "window_from_seq": window_from_seq},
    )


def new_accumulating_turn(
    session_id: SessionId,
    tenant: str,
    turn_id: TurnId,
    group_id: GroupId,
    trace_id: TraceId,
    from_seq: int,
    last_seq: int,
    fence: int,
    at_ms: int,
) -> Turn:
    return Turn(
        tenant=tenant,
        turn_id=turn_id,
        session_id=session_id,
        group_id=group_id,
        phase=TurnPhase.ACCUMULATING,
        from_seq=from_seq,
        to_seq=last_seq,
        attempt=0,
        fence=fence,
        irreversible_started=False,
        trace_id=trace_id,
        created_at_ms=at_ms,
        updated_at_ms=at_ms,
    )


def open_window(
    turn: Turn, group: TurnGroup | None, close_at_ms: int, reason: str, versions: Versions
) -> Ops:
    """A new accumulating turn (and its group when ``group`` is new) with its close timer."""
    at = turn.created_at_ms
    ops: Ops = [_guard(turn, turn.fence, at)]
    if group is not None:
        ops.append(OpenGroup(group))
    ops += [
        CreateTurn(turn),
        SetTimer(window_timer(turn, close_at_ms, turn.from_seq)),
        _event(
            EventKind.WINDOW_OPENED,
            turn,
            versions,
            at,
            from_seq=turn.from_seq,
            close_at_ms=close_at_ms,
            reason=reason,
        ),
    ]
    return ops


def _closed_and_started(
    running: Turn, from_seq: int, reason: str, at_ms: int, versions: Versions
) -> Ops:
    """WINDOW_CLOSED then TURN_STARTED for a turn that just became RUNNING."""
    return [
        _event(
            EventKind.WINDOW_CLOSED,
            running,
            versions,
            at_ms,
            reason=reason,
            from_seq=from_seq,
            to_seq=running.to_seq,
        ),
        _event(
            EventKind.TURN_STARTED,
            running,
            versions,
            at_ms,
            attempt=running.attempt,
            from_seq=from_seq,
            to_seq=running.to_seq,
        ),
    ]


def open_and_start(
    turn: Turn, group: TurnGroup, to_seq: int, reason: str, versions: Versions
) -> tuple[Turn, Ops]:
    """A window that closes as it opens (accumulation OFF, a button): the turn is created
    RUNNING with its first attempt recorded, in one unit. Returns the running turn."""
    at = turn.created_at_ms
    running = replace(turn, phase=TurnPhase.RUNNING, to_seq=to_seq, attempt=1)
    ops: Ops = [
        _guard(turn, turn.fence, at),
        OpenGroup(replace(group, attempts=1)),
        CreateTurn(running),
        _event(
            EventKind.WINDOW_OPENED,
            running,
            versions,
            at,
            from_seq=turn.from_seq,
            close_at_ms=at,
            reason=reason,
        ),
        *_closed_and_started(running, turn.from_seq, reason, at, versions),
    ]
    return running, ops


def extend_window(
    turn: Turn,
    fence: int,
    close_at_ms: int,
    window_from_seq: int,
    reason: str,
    at_ms: int,
    versions: Versions,
) -> Ops:
    return [
        _guard(turn, fence, at_ms),
        SetTimer(window_timer(turn, close_at_ms, window_from_seq)),
        _event(
            EventKind.WINDOW_EXTENDED, turn, versions, at_ms, close_at_ms=close_at_ms, reason=reason
        ),
    ]


def start_run(
    turn: Turn,
    group: TurnGroup,
    fence: int,
    to_seq: int,
    reason: str,
    at_ms: int,
    versions: Versions,
) -> Ops:
    """ACCUMULATING -> RUNNING over ``(from_seq, to_seq]``; the attempt is recorded first,
    so a message that crashes the process still counts (DESIGN §15)."""
    attempt = turn.attempt + 1
    running = replace(turn, to_seq=to_seq, attempt=attempt)
    return [
        _guard(turn, fence, at_ms),
        _move(turn, TurnPhase.RUNNING, fence, at_ms, to_seq=to_seq, new_attempt=attempt),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts, group.attempts + 1),
        CancelTimer(turn.session_id, WINDOW_TIMER),
        *_closed_and_started(running, turn.from_seq, reason, at_ms, versions),
    ]


def rerun(
    turn: Turn, group: TurnGroup, fence: int, reason: str, at_ms: int, versions: Versions
) -> Ops:
    """RUNNING -> RUNNING with the next attempt number (retry, or recovery of a turn whose
    holder died)."""
    attempt = turn.attempt + 1
    return [
        _guard(turn, fence, at_ms),
        _move(turn, TurnPhase.RUNNING, fence, at_ms, new_attempt=attempt),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts, group.attempts + 1),
        _event(
            EventKind.TURN_STARTED,
            replace(turn, attempt=attempt),
            versions,
            at_ms,
            attempt=attempt,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            reason=reason,
        ),
    ]


def absorb(turn: Turn, fence: int, to_seq: int, at_ms: int, versions: Versions) -> Ops:
    return [
        _guard(turn, fence, at_ms),
        _move(turn, TurnPhase.RUNNING, fence, at_ms, to_seq=to_seq),
        _event(EventKind.TURN_ABSORBED, turn, versions, at_ms, from_seq=turn.to_seq, to_seq=to_seq),
    ]


def _enqueue(turn: Turn, segments: Sequence[ReplySegment], at_ms: int, versions: Versions) -> Ops:
    ops: Ops = []
    for position, segment in enumerate(segments):
        ops.append(
            EnqueueReply(turn.session_id, turn.turn_id, position, segment.to_payload(), at_ms)
        )
        ops.append(
            _event(
                EventKind.RESPONSE_QUEUED,
                turn,
                versions,
                at_ms,
                position=position,
                text=segment.text,
            )
        )
    return ops


def _record(
    turn: Turn,
    outcome: TurnPhase,
    versions: Versions,
    started_at_ms: int,
    at_ms: int,
    **fields: Any,
) -> SaveTurnRecord:
    return SaveTurnRecord(
        TurnRecord(
            correlation=correlation(turn, versions),
            outcome=outcome,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            attempt=turn.attempt,
            started_at_ms=started_at_ms,
            ended_at_ms=at_ms,
            **fields,
        )
    )


def commit(
    turn: Turn,
    group: TurnGroup,
    fence: int,
    result: PipelineResult,
    state_version: int,
    require_last_seq: bool,
    started_at_ms: int,
    at_ms: int,
    versions: Versions,
    details: Mapping[str, Any] | None = None,
) -> Ops:
    """The turn's one transaction (DESIGN §4 step 4)."""
    ops: Ops = [_guard(turn, fence, at_ms), _move(turn, TurnPhase.COMMITTED, fence, at_ms)]
    version_after = state_version
    if result.state_patch:
        ops.append(PatchState(turn.session_id, state_version, result.state_patch, at_ms))
        version_after = state_version + 1
    ops += _enqueue(turn, result.segments, at_ms, versions)
    if result.handoff:
        ops += _flag(turn, result.handoff, at_ms, versions)
    ops += [
        _record(
            turn,
            TurnPhase.COMMITTED,
            versions,
            started_at_ms,
            at_ms,
            replies=tuple(s.text for s in result.segments),
            state_version_before=state_version,
            state_version_after=version_after,
            details={
                "outcomes": list(result.outcomes),
                "expects_more_input": result.expects_more_input,
                "queued_unseen": not require_last_seq,
                **dict(details or {}),
                **dict(result.details),
            },
        ),
        _event(
            EventKind.TURN_COMMITTED,
            turn,
            versions,
            at_ms,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            attempt=turn.attempt,
            replies=len(result.segments),
        ),
        ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, require_last_seq, at_ms),
        UpdateGroup(group.group_id, GroupStatus.COMMITTED, group.restarts, group.attempts),
    ]
    return ops


def _flag(turn: Turn, reason: str, at_ms: int, versions: Versions) -> Ops:
    return [
        FlagSession(turn.session_id, True, reason, at_ms),
        _event(EventKind.SESSION_FLAGGED, turn, versions, at_ms, reason=reason),
    ]


def supersede(
    turn: Turn,
    group: TurnGroup,
    fence: int,
    restart: Turn,
    close_at_ms: int,
    reason: str,
    started_at_ms: int,
    at_ms: int,
    versions: Versions,
) -> Ops:
    """Close the turn without effects and open its restart in the same group (DESIGN §6).

    The restart's window covers only the messages the superseded turn had not seen.
    """
    return [
        _guard(turn, fence, at_ms),
        _move(turn, TurnPhase.SUPERSEDED, fence, at_ms),
        _record(
            turn,
            TurnPhase.SUPERSEDED,
            versions,
            started_at_ms,
            at_ms,
            error=None,
            details={"reason": reason, "restart_turn_id": restart.turn_id},
        ),
        _event(
            EventKind.TURN_SUPERSEDED,
            turn,
            versions,
            at_ms,
            reason=reason,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            last_seq=restart.to_seq,
            restart_turn_id=restart.turn_id,
        ),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts + 1, group.attempts),
        CreateTurn(restart),
        SetTimer(window_timer(restart, close_at_ms, turn.to_seq)),
        _event(
            EventKind.WINDOW_OPENED,
            restart,
            versions,
            at_ms,
            from_seq=restart.from_seq,
            close_at_ms=close_at_ms,
            reason="restart",
        ),
    ]


def fail(
    turn: Turn,
    group: TurnGroup,
    fence: int,
    error: str,
    fallback_text: str,
    started_at_ms: int,
    at_ms: int,
    versions: Versions,
) -> Ops:
    """The turn gave up (DESIGN §15): its range is consumed, the fallback reply queued and
    the session flagged for a person, in one transaction."""
    return [
        _guard(turn, fence, at_ms),
        _move(turn, TurnPhase.FAILED, fence, at_ms),
        *_enqueue(turn, [ReplySegment(fallback_text)], at_ms, versions),
        *_flag(turn, f"turn failed after {turn.attempt} attempt(s): {error}", at_ms, versions),
        _record(
            turn,
            TurnPhase.FAILED,
            versions,
            started_at_ms,
            at_ms,
            replies=(fallback_text,),
            error=error,
        ),
        _event(
            EventKind.TURN_FAILED,
            turn,
            versions,
            at_ms,
            error=error,
            attempts=turn.attempt,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
        ),
        ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, False, at_ms),
        UpdateGroup(group.group_id, GroupStatus.FAILED, group.restarts, group.attempts),
    ]


def attempt_failed(turn: Turn, fence: int, error: str, at_ms: int, versions: Versions) -> Ops:
    return [
        _guard(turn, fence, at_ms),
        _event(
            EventKind.TURN_ATTEMPT_FAILED, turn, versions, at_ms, attempt=turn.attempt, error=error
        ),
    ]


def progress(
    turn: Turn, fence: int, name: str, data: Mapping[str, Any], at_ms: int, versions: Versions
) -> Ops:
    return [
        _guard(turn, fence, at_ms),
        _event(EventKind.TURN_PROGRESS, turn, versions, at_ms, name=name, **dict(data)),
    ]
