"""The units of work that end a turn: commit, supersede, fail, stand down (pure,
table-testable).

Each starts with ``CheckFence`` and moves the turn by compare-and-set (DESIGN §4, §6, §15).
What the turn leaves for the next one rides in the same unit: its state patch, the agent
session row (``PipelineResult.agent_session``) and ``meta.awaiting_answer`` (set by a reply
that awaits an answer, cleared by any other commit and by a failure; ``turn_leaves``); a
superseded turn leaves none of them.

Time a ready reply was held while the customer typed (``held_ms``, ``service.typing_hold``)
is waiting on purpose, not run time: each ending's ``run_ms`` (``acf_turn_run_seconds``, the
``acf.turn.run`` span) leaves it out, its record says ``held_ms`` in its details (the record
keeps its real start and end; ``record_facts``' duration, which a canary compares, leaves
it out), and its event carries ``held_ms`` when there was a hold. ``latency_ms`` on
``turn.committed`` and ``turn.failed`` stays what the customer saw: from the group's first
window to the commit, the hold included (``acf_turn_latency_seconds``).

An agent turn's range is consumed only while the session is in agent mode (its
``ConsumeRange`` keeps ``mode=AGENT``): a turn whose session left it stands down
(``stand_down``), or, past the irreversible gate, commits silently (``silent=True``: its
effects kept, no reply queued, the texts kept in its record as ``withheld_replies``).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.domain.records import TurnRecord
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.ledger import LedgerEntry
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, FlagSession, PatchState
from acf.ports.timers import CancelTimer, SetTimer
from acf.ports.turn_store import CreateTurn, SaveTurnRecord, UpdateGroup
from acf.ports.unit_of_work import WriteOp
from acf.service.turn_leaves import agent_session_ops, awaiting_patch
from acf.service.turn_progress_units import (
    WINDOW_TIMER,
    Ops,
    Versions,
    correlation,
    event_op,
    guard_op,
    move_op,
    window_timer,
)
from acf.service.unfinished_calls import settle_unfinished

__all__ = [
    "awaiting_patch",
    "commit",
    "fail",
    "flag_for_person",
    "settle_unfinished",
    "stand_down",
    "supersede",
    "turn_record",
]

STAND_DOWN_REASON = "mode"
"""The reason a turn whose session left agent mode is superseded with."""


def _enqueue(
    turn: Turn, segments: Sequence[ReplySegment], at_ms: int, versions: Versions
) -> tuple[Ops, Ops]:
    """The replies' outbox rows, and their ``response.queued`` events."""
    rows: Ops = [
        EnqueueReply(turn.session_id, turn.turn_id, position, segment.to_payload(), at_ms)
        for position, segment in enumerate(segments)
    ]
    events: Ops = [
        event_op(
            EventKind.RESPONSE_QUEUED, turn, versions, at_ms, position=position, text=segment.text
        )
        for position, segment in enumerate(segments)
    ]
    return rows, events


def _timing(started_at_ms: int, at_ms: int, held_ms: int) -> dict[str, int]:
    """An ending event's ``run_ms`` (the run's time without its holds) and ``held_ms``
    (only when it held)."""
    run_ms = max(0, at_ms - started_at_ms - held_ms)
    return {"run_ms": run_ms, **({"held_ms": held_ms} if held_ms > 0 else {})}


def _held(held_ms: int) -> dict[str, int]:
    """A record's ``held_ms`` detail (only when it held)."""
    return {"held_ms": held_ms} if held_ms > 0 else {}


def turn_record(
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
    *,
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
    extra: Sequence[WriteOp[Any]] = (),
    silent: bool = False,
    held_ms: int = 0,
) -> Ops:
    """The turn's one transaction (DESIGN §4 step 4); ``extra`` rides along (a
    confirmation request's event). The events come last, together (one statement).
    ``silent``: the session left agent mode after the turn passed the irreversible gate;
    its effects commit in whatever mode the session is in, its replies are not queued.
    ``held_ms``: how long this run held its ready reply while the customer typed (left out
    of ``run_ms`` and of the record's duration, kept in ``latency_ms``).
    Raises ``InvalidValue`` when ``result.agent_session`` is another conversation's row."""
    ops: Ops = [guard_op(turn, fence, at_ms), move_op(turn, TurnPhase.COMMITTED, fence, at_ms)]
    version_after = state_version
    if result.state_patch:
        ops.append(PatchState(turn.session_id, state_version, result.state_patch, at_ms))
        version_after = state_version + 1
    texts = tuple(s.text for s in result.segments)
    rows, queued = _enqueue(turn, () if silent else result.segments, at_ms, versions)
    ops += rows
    withheld = {"withheld_replies": list(texts)} if silent else {}
    ops += [
        turn_record(
            turn,
            TurnPhase.COMMITTED,
            versions,
            started_at_ms,
            at_ms,
            replies=() if silent else texts,
            state_version_before=state_version,
            state_version_after=version_after,
            details={
                "outcomes": list(result.outcomes),
                "expects_more_input": result.expects_more_input,
                "queued_unseen": not require_last_seq,
                "handoff": result.handoff,
                **withheld,
                **dict(details or {}),
                **dict(result.details),
                **_held(held_ms),
            },
        ),
        _consume(turn, require_last_seq, at_ms, silent),
        UpdateGroup(group.group_id, GroupStatus.COMMITTED, group.restarts, group.attempts),
        *agent_session_ops(turn, result.agent_session),
        *queued,
    ]
    if result.handoff:
        ops += flag_for_person(turn, result.handoff, at_ms, versions)
    ops += [
        event_op(
            EventKind.TURN_COMMITTED,
            turn,
            versions,
            at_ms,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            attempt=turn.attempt,
            replies=len(rows),
            **({"withheld": len(texts)} if silent else {}),
            **_timing(started_at_ms, at_ms, held_ms),
            latency_ms=at_ms - group.created_at_ms,
        ),
        *extra,
    ]
    return ops


def _consume(turn: Turn, require_last_seq: bool, at_ms: int, silent: bool) -> ConsumeRange:
    """The turn's range consumed: in agent mode only, unless the commit is ``silent``."""
    mode = None if silent else SessionMode.AGENT
    return ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, require_last_seq, at_ms, mode)


def flag_for_person(turn: Turn, reason: str, at_ms: int, versions: Versions) -> Ops:
    """Flag the session for a person, with the audit event."""
    return [
        FlagSession(turn.session_id, True, reason, at_ms),
        event_op(EventKind.SESSION_FLAGGED, turn, versions, at_ms, reason=reason),
    ]


def supersede(
    *,
    turn: Turn,
    group: TurnGroup,
    fence: int,
    restart: Turn,
    close_at_ms: int,
    reason: str,
    started_at_ms: int,
    at_ms: int,
    versions: Versions,
    held_ms: int = 0,
) -> Ops:
    """Close the turn without effects and open its restart in the same group (DESIGN §6).

    The restart's window covers only the messages the superseded turn had not seen.
    ``held_ms``: as for ``commit`` (a message ended a hold).
    """
    return [
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.SUPERSEDED, fence, at_ms),
        turn_record(
            turn,
            TurnPhase.SUPERSEDED,
            versions,
            started_at_ms,
            at_ms,
            error=None,
            details={"reason": reason, "restart_turn_id": restart.turn_id, **_held(held_ms)},
        ),
        event_op(
            EventKind.TURN_SUPERSEDED,
            turn,
            versions,
            at_ms,
            reason=reason,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            last_seq=restart.to_seq,
            restart_turn_id=restart.turn_id,
            **_timing(started_at_ms, at_ms, held_ms),
        ),
        UpdateGroup(group.group_id, GroupStatus.OPEN, group.restarts + 1, group.attempts),
        CreateTurn(restart),
        SetTimer(window_timer(restart, close_at_ms, turn.to_seq)),
        event_op(
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
    *,
    turn: Turn,
    group: TurnGroup,
    fence: int,
    error: str,
    fallback_text: str,
    started_at_ms: int,
    at_ms: int,
    versions: Versions,
    unfinished: Sequence[LedgerEntry] = (),
    extra: Sequence[WriteOp[Any]] = (),
    session_state: tuple[int, Mapping[str, Any]] | None = None,
    silent: bool = False,
    held_ms: int = 0,
) -> Ops:
    """The turn gave up (DESIGN §15): its range is consumed, the fallback reply queued and
    the session flagged for a person, in one transaction; ``extra`` rides along (its dead
    letter). Tool calls of its group still
    ``started`` (a crash or a cut-off mid-call) are settled in the same unit, since no turn
    will ever learn their outcome: ``in_doubt`` when a side effect may have happened,
    ``failed`` when running them again is harmless. ``session_state`` (the state's version
    and content): a ``meta.awaiting_answer`` in it is cleared, since the fallback reply
    asks nothing (the customer's next message waits for its window again). ``silent``: the
    session left agent mode after the turn passed the irreversible gate; the fallback
    reply is withheld (kept in the record), the range consumed in any mode. ``held_ms``:
    as for ``commit``."""
    segments = () if silent else (ReplySegment(fallback_text),)
    rows, queued = _enqueue(turn, segments, at_ms, versions)
    cleared: Ops = []
    if session_state is not None:
        version, state = session_state
        patch = awaiting_patch(state, False)
        if patch is not None:
            cleared.append(PatchState(turn.session_id, version, patch, at_ms))
    return [
        *settle_unfinished(turn, unfinished, at_ms, versions),
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.FAILED, fence, at_ms),
        *cleared,
        *rows,
        *queued,
        *flag_for_person(
            turn, f"turn failed after {turn.attempt} attempt(s): {error}", at_ms, versions
        ),
        turn_record(
            turn,
            TurnPhase.FAILED,
            versions,
            started_at_ms,
            at_ms,
            replies=() if silent else (fallback_text,),
            error=error,
            details={
                **({"withheld_replies": [fallback_text]} if silent else {}),
                **_held(held_ms),
            },
        ),
        event_op(
            EventKind.TURN_FAILED,
            turn,
            versions,
            at_ms,
            error=error,
            attempts=turn.attempt,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            **_timing(started_at_ms, at_ms, held_ms),
            latency_ms=at_ms - group.created_at_ms,
        ),
        _consume(turn, False, at_ms, silent),
        UpdateGroup(group.group_id, GroupStatus.FAILED, group.restarts, group.attempts),
        *extra,
    ]


def stand_down(
    turn: Turn,
    fence: int,
    versions: Versions,
    at_ms: int,
    mode: SessionMode,
    started_at_ms: int | None = None,
    *,
    unfinished: Sequence[LedgerEntry] = (),
    held_ms: int = 0,
) -> Ops:
    """End a live turn (ACCUMULATING or RUNNING) because its session left agent mode (now
    ``mode``): SUPERSEDED by compare-and-set from its phase, its record (reason ``mode``),
    ``turn.superseded`` and its group HANDED_OFF (its counters kept). No reply, no restart,
    no new timer (an accumulating turn's window timer is cancelled) and no compensation:
    the messages stay unconsumed for whoever answers now. Calls of the turn still
    ``started`` (``unfinished``: the runner stopped it mid-call, or it was cut off) are
    settled as a failed turn settles them, since no turn of this group will learn how they
    ended. ``held_ms``: as for ``commit`` (the session left agent mode during a hold)."""
    started = turn.created_at_ms if started_at_ms is None else started_at_ms
    ops: Ops = [
        *settle_unfinished(turn, unfinished, at_ms, versions, reason="turn_stood_down"),
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.SUPERSEDED, fence, at_ms),
    ]
    if turn.phase is TurnPhase.ACCUMULATING:
        ops.append(CancelTimer(turn.session_id, WINDOW_TIMER))
    return [
        *ops,
        turn_record(
            turn,
            TurnPhase.SUPERSEDED,
            versions,
            started,
            at_ms,
            error=None,
            details={"reason": STAND_DOWN_REASON, "mode": mode.value, **_held(held_ms)},
        ),
        UpdateGroup(turn.group_id, GroupStatus.HANDED_OFF, 0, 0),
        event_op(
            EventKind.TURN_SUPERSEDED,
            turn,
            versions,
            at_ms,
            reason=STAND_DOWN_REASON,
            mode=mode.value,
            phase=turn.phase.value,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            **_timing(started, at_ms, held_ms),
        ),
    ]
