"""What a turn leaves in the session for the next one (pure): the agent session row a
pipeline returns, the conversation's open agent session settled by a failure, and the
state's ``meta`` marks a commit sets or clears (``awaiting_answer``, ``handover``)."""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import InvalidValue
from acf.domain.turns import Turn
from acf.ports.agent_sessions import SaveAgentSession
from acf.service.turn_progress_units import Ops


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


def handover_patch(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The state patch clearing ``meta.handover`` (the note an operator left when handing
    the session back, ``ResumeAgent``): the first agent commit after the resume saw it;
    no patch when the state has none."""
    meta = state.get("meta") or {}
    if not isinstance(meta, Mapping) or meta.get("handover") is None:
        return None
    return {"meta": {"handover": None}}
