"""Agent sessions: which session of an external agent service each conversation talks to,
looked up both ways (DESIGN §16, seed 004 Story 2).

Scoped by the caller's tenant: another tenant's conversation or agent session answers 404,
as an unknown one does.
"""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.ids import SessionId
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.routes_sessions import session_of
from acf.entrypoints.http.views import ErrorBody

router = APIRouter(prefix="/v1", tags=["agent sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "Nothing of that id for this tenant"},
}


class AgentSessionView(BaseModel):
    session_id: str = Field(description="The conversation: acf's session id.")
    agent: str
    profile: str
    agent_session_id: str | None = Field(description="The service's id, once it named one.")
    status: str = Field(description="ACTIVE, AWAITING_USER, COMPLETED, FAILED or ABANDONED.")
    pending_ask_id: str | None
    pending_question: str | None
    pending_options: list[str]
    asked_at_ms: int | None
    execution_open: bool = Field(description="An execution has not ended definitely.")
    last_error: str | None
    created_at_ms: int
    last_interaction_at_ms: int


class AgentSessionList(BaseModel):
    items: list[AgentSessionView]


def agent_session_view(row: AgentSessionRow) -> AgentSessionView:
    """The row without its execution key (the service's deduplication key stays inside)."""
    return AgentSessionView(
        session_id=row.session_id,
        agent=row.agent,
        profile=row.profile,
        agent_session_id=row.agent_session_id,
        status=row.status.value,
        pending_ask_id=row.pending_ask_id,
        pending_question=row.pending_question,
        pending_options=list(row.pending_options),
        asked_at_ms=row.asked_at_ms,
        execution_open=row.execution_open,
        last_error=row.last_error,
        created_at_ms=row.created_at_ms,
        last_interaction_at_ms=row.last_interaction_at_ms,
    )


@router.get(
    "/sessions/{session_id}/agent-sessions", response_model=AgentSessionList, responses=_ERRORS
)
async def list_agent_sessions(
    session_id: SessionId, tenant: Tenant, state: State
) -> AgentSessionList:
    """The conversation's agent sessions, oldest first."""
    await session_of(state, tenant, session_id)
    rows = await state.service.store.agent_sessions.list_for(tenant, session_id)
    return AgentSessionList(items=[agent_session_view(r) for r in rows])


@router.get(
    "/agent-sessions/{agent_session_id}", response_model=AgentSessionView, responses=_ERRORS
)
async def get_agent_session(
    agent_session_id: str, tenant: Tenant, state: State
) -> AgentSessionView:
    """The conversation an agent service's session belongs to (the reverse lookup)."""
    row = await state.service.store.agent_sessions.by_agent_session(tenant, agent_session_id)
    if row is None:
        raise ApiError(404, "not_found", f"no agent session {agent_session_id[:128]!r}")
    return agent_session_view(row)
