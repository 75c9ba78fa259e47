"""The units of work that open, start and advance a turn, built as values (pure: no I/O,
table-testable); the ones that end it are in ``turn_ending_units``.

Each unit starts with ``CheckFence`` and moves the turn by compare-and-set, so a holder
whose lease expired or was taken over commits nothing (DESIGN §3 invariants 3 and 5).
The units that open turns outside agent mode (a cool-down's held messages, a blocked
customer's DROP turn) are in ``mode_turn_units``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import GroupId, SessionId, TraceId, TurnId
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.timers import CancelTimer, SetTimer, Timer
from acf.ports.turn_store import CreateTurn, MoveTurn, OpenGroup, UpdateGroup
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


def event_op(
    kind: EventKind, turn: Turn, versions: Versions, at_ms: int, **data: Any
) -> AppendEvent:
    return AppendEvent(FabricEvent(kind, at_ms, correlation(turn, versions), data))


def guard_op(turn: Turn, fence: int, at_ms: int) -> CheckFence:
    return CheckFence(turn.session_id, fence, at_ms)


def move_op(
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
    *,
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
    ops: Ops = [guard_op(turn, turn.fence, at)]
    if group is not None:
        ops.append(OpenGroup(group))
    ops += [
        CreateTurn(turn),
        SetTimer(window_timer(turn, close_at_ms, turn.from_seq)),
        event_op(
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


def closed_and_started(
    running: Turn, from_seq: int, reason: str, at_ms: int, versions: Versions
) -> Ops:
    """WINDOW_CLOSED then TURN_STARTED for a turn that just became RUNNING."""
    return [
        event_op(
            EventKind.WINDOW_CLOSED,
            running,
            versions,
            at_ms,
            reason=reason,
            from_seq=from_seq,
            to_seq=running.to_seq,
            waited_ms=at_ms - running.created_at_ms,
        ),
        event_op(
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
        guard_op(turn, turn.fence, at),
        OpenGroup(replace(group, attempts=1)),
        CreateTurn(running),
        event_op(
            EventKind.WINDOW_OPENED,
            running,
            versions,
            at,
            from_seq=turn.from_seq,
            close_at_ms=at,
            reason=reason,
        ),
        *closed_and_started(running, turn.from_seq, reason, at, versions),
    ]
    return running, ops


def open_replay(
    turn: Turn, group: TurnGroup, dead_letter_id: str, versions: Versions
) -> tuple[Turn, Ops]:
    """A REPLAY turn: an empty range ``(consumed_seq, consumed_seq]``, created RUNNING with
    its first attempt recorded (nothing to accumulate), in one unit, in a new group."""
    at = turn.created_at_ms
    running = replace(turn, phase=TurnPhase.RUNNING, to_seq=turn.from_seq, attempt=1)
    ops: Ops = [
        guard_op(turn, turn.fence, at),
        OpenGroup(replace(group, attempts=1)),
        CreateTurn(running),
        event_op(
            EventKind.TURN_STARTED,
            running,
            versions,
            at,
            attempt=1,
            from_seq=running.from_seq,
            to_seq=running.to_seq,
            reason="replay",
            dead_letter_id=dead_letter_id,
        ),
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
        guard_op(turn, fence, at_ms),
        SetTimer(window_timer(turn, close_at_ms, window_from_seq)),
        event_op(
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
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.RUNNING, fence, at_ms, to_seq=to_seq, new_attempt=attempt),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts, group.attempts + 1),
        CancelTimer(turn.session_id, WINDOW_TIMER),
        *closed_and_started(running, turn.from_seq, reason, at_ms, versions),
    ]


def rerun(
    turn: Turn, group: TurnGroup, fence: int, reason: str, at_ms: int, versions: Versions
) -> Ops:
    """RUNNING -> RUNNING with the next attempt number (retry, or recovery of a turn whose
    holder died)."""
    attempt = turn.attempt + 1
    return [
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.RUNNING, fence, at_ms, new_attempt=attempt),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts, group.attempts + 1),
        event_op(
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
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.RUNNING, fence, at_ms, to_seq=to_seq),
        event_op(
            EventKind.TURN_ABSORBED, turn, versions, at_ms, from_seq=turn.to_seq, to_seq=to_seq
        ),
    ]


def attempt_failed(turn: Turn, fence: int, error: str, at_ms: int, versions: Versions) -> Ops:
    return [
        guard_op(turn, fence, at_ms),
        event_op(
            EventKind.TURN_ATTEMPT_FAILED, turn, versions, at_ms, attempt=turn.attempt, error=error
        ),
    ]


def progress(
    turn: Turn, fence: int, name: str, data: Mapping[str, Any], at_ms: int, versions: Versions
) -> Ops:
    return [
        guard_op(turn, fence, at_ms),
        event_op(EventKind.TURN_PROGRESS, turn, versions, at_ms, name=name, **dict(data)),
    ]
