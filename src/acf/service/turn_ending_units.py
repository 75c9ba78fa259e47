"""The units of work that end a turn: commit, supersede, fail (pure, table-testable).

Each starts with ``CheckFence`` and moves the turn by compare-and-set (DESIGN §4, §6, §15).
What the turn leaves for the next one rides in the same unit: its state patch, the agent
session row (``PipelineResult.agent_session``) and ``meta.awaiting_answer`` (set by a reply
that awaits an answer, cleared by any other commit and by a failure); a superseded turn
leaves none of them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import InvalidValue
from acf.domain.events import EventKind
from acf.domain.records import TurnRecord
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.agent_sessions import SaveAgentSession
from acf.ports.ledger import FinishExecution, LedgerEntry
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, FlagSession, PatchState
from acf.ports.timers import SetTimer
from acf.ports.turn_store import CreateTurn, SaveTurnRecord, UpdateGroup
from acf.ports.unit_of_work import WriteOp
from acf.service.turn_progress_units import (
    Ops,
    Versions,
    correlation,
    event_op,
    guard_op,
    move_op,
    window_timer,
)


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
) -> Ops:
    """The turn's one transaction (DESIGN §4 step 4); ``extra`` rides along (a
    confirmation request's event). The events come last, together (one statement).
    Raises ``InvalidValue`` when ``result.agent_session`` is another conversation's row."""
    ops: Ops = [guard_op(turn, fence, at_ms), move_op(turn, TurnPhase.COMMITTED, fence, at_ms)]
    version_after = state_version
    if result.state_patch:
        ops.append(PatchState(turn.session_id, state_version, result.state_patch, at_ms))
        version_after = state_version + 1
    rows, queued = _enqueue(turn, result.segments, at_ms, versions)
    ops += rows
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
                "handoff": result.handoff,
                **dict(details or {}),
                **dict(result.details),
            },
        ),
        ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, require_last_seq, at_ms),
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
            replies=len(result.segments),
            run_ms=at_ms - started_at_ms,
            latency_ms=at_ms - group.created_at_ms,
        ),
        *extra,
    ]
    return ops


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
) -> Ops:
    """Close the turn without effects and open its restart in the same group (DESIGN §6).

    The restart's window covers only the messages the superseded turn had not seen.
    """
    return [
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.SUPERSEDED, fence, at_ms),
        _record(
            turn,
            TurnPhase.SUPERSEDED,
            versions,
            started_at_ms,
            at_ms,
            error=None,
            details={"reason": reason, "restart_turn_id": restart.turn_id},
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
            run_ms=at_ms - started_at_ms,
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
) -> Ops:
    """The turn gave up (DESIGN §15): its range is consumed, the fallback reply queued and
    the session flagged for a person, in one transaction; ``extra`` rides along (its dead
    letter). Tool calls of its group still
    ``started`` (a crash or a cut-off mid-call) are settled in the same unit, since no turn
    will ever learn their outcome: ``in_doubt`` when a side effect may have happened,
    ``failed`` when running them again is harmless. ``session_state`` (the state's version
    and content): a ``meta.awaiting_answer`` in it is cleared, since the fallback reply
    asks nothing (the customer's next message waits for its window again)."""
    rows, queued = _enqueue(turn, [ReplySegment(fallback_text)], at_ms, versions)
    cleared: Ops = []
    if session_state is not None:
        version, state = session_state
        patch = awaiting_patch(state, False)
        if patch is not None:
            cleared.append(PatchState(turn.session_id, version, patch, at_ms))
    return [
        *_unfinished(turn, unfinished, at_ms, versions),
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.FAILED, fence, at_ms),
        *cleared,
        *rows,
        *queued,
        *flag_for_person(
            turn, f"turn failed after {turn.attempt} attempt(s): {error}", at_ms, versions
        ),
        _record(
            turn,
            TurnPhase.FAILED,
            versions,
            started_at_ms,
            at_ms,
            replies=(fallback_text,),
            error=error,
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
            run_ms=at_ms - started_at_ms,
            latency_ms=at_ms - group.created_at_ms,
        ),
        ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, False, at_ms),
        UpdateGroup(group.group_id, GroupStatus.FAILED, group.restarts, group.attempts),
        *extra,
    ]


def agent_session_ops(turn: Turn, row: AgentSessionRow | None) -> Ops:
    """Save ``row``, the agent session as ``turn`` leaves it (``PipelineResult.
    agent_session``), with the turn's commit. Raises ``InvalidValue`` for a row of another
    tenant or conversation (nothing is written)."""
    if row is None:
        return []
    if (row.tenant, row.session_id) != (turn.tenant, turn.session_id):
        raise InvalidValue(
            f"the agent session row {row.row_id} a pipeline returned belongs to another "
            f"conversation than turn {turn.turn_id}'s"
        )
    return [SaveAgentSession(row)]


def settle_open_agent_session(
    row: AgentSessionRow | None, agent: str, error: str, at_ms: int
) -> AgentSessionRow | None:
    """The conversation's open agent session row as a FAILED turn of ``agent`` leaves it:
    an execution this turn left open is FAILED (nothing will finish it; the next delegated
    turn starts afresh), so the row does not keep the conversation sticky; a row waiting
    for the customer's answer, or another agent's, stays as it is (None: nothing to write)."""
    if row is None or row.agent != agent or not row.execution_open:
        return None
    if row.status is not AgentSessionStatus.ACTIVE:
        return None
    return replace(
        row,
        status=AgentSessionStatus.FAILED,
        execution_open=False,
        last_interaction_at_ms=at_ms,
        last_error=(" ".join(f"the turn failed: {error}".split()))[:500],
    )


def awaiting_patch(state: Mapping[str, Any], awaiting: bool) -> dict[str, Any] | None:
    """The state patch for ``PipelineResult.awaiting_answer``: ``meta.awaiting_answer`` set
    by a reply that awaits the customer's answer, cleared by the next commit that does not
    (``None`` deletes it); no patch when nothing changes."""
    was = bool((state.get("meta") or {}).get("awaiting_answer"))
    if awaiting == was:
        return None
    return {"meta": {"awaiting_answer": True if awaiting else None}}


def _unfinished(
    turn: Turn, unfinished: Sequence[LedgerEntry], at_ms: int, versions: Versions
) -> Ops:
    """A call with a side effect that may have happened is ``in_doubt`` (a person checks);
    a PURE or IDEMPOTENT one is ``failed``: running it again is safe, so nobody needs to."""
    ops: Ops = []
    for entry in unfinished:
        doubtful = entry.policy in (SideEffectPolicy.IRREVERSIBLE, SideEffectPolicy.COMPENSATABLE)
        status = LedgerStatus.IN_DOUBT if doubtful else LedgerStatus.FAILED
        kind = EventKind.TOOL_IN_DOUBT if doubtful else EventKind.TOOL_EXECUTION_FAILED
        error = "the turn failed before this call's outcome was recorded"
        ops.append(FinishExecution(entry.execution_id, status, at_ms, error=error))
        ops.append(
            event_op(
                kind,
                turn,
                versions,
                at_ms,
                tool=entry.tool,
                execution_id=entry.execution_id,
                policy=entry.policy.value,
                reason="turn_failed",
            )
        )
    return ops
