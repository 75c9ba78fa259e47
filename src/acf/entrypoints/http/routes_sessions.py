"""Reading a tenant's conversations: sessions, turns with their records, events, ledger.

Everything is scoped by the caller's tenant: another tenant's session answers 404, as an
unknown one does (its existence is never revealed).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from acf.domain.events import EventKind
from acf.domain.ids import SessionId
from acf.entrypoints.http.context import ApiState, State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import (
    ErrorBody,
    EventList,
    LedgerList,
    SessionDetail,
    SessionList,
    TurnList,
    event_view,
    ledger_view,
    message_view,
    reply_view,
    session_view,
    turn_view,
)
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.ports.session_store import SessionFilter, SessionRecord, SessionStatus

router = APIRouter(prefix="/v1", tags=["sessions"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "No such session for this tenant"},
    422: {"model": ErrorBody, "description": "Invalid query parameter"},
}
HISTORY_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=1000)]
Ms = Annotated[int | None, Query(ge=0, le=2**53)]
Kinds = Annotated[list[EventKind] | None, Query(description="Event kinds to keep")]


async def session_of(state: State, tenant: str, session_id: SessionId) -> SessionRecord:
    session = await state.service.store.sessions.get(tenant, session_id)
    if session is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    return session


@router.get("/sessions", response_model=SessionList, responses=_ERRORS)
async def list_sessions(
    tenant: Tenant,
    state: State,
    flagged: bool | None = Query(None, description="Only sessions flagged for a person"),
    status: SessionStatus | None = None,
    customer: Annotated[str | None, Query(max_length=256)] = None,
    limit: Limit = 100,
) -> SessionList:
    where = SessionFilter(flagged=flagged, status=status, customer=customer, limit=limit)
    sessions = await state.service.store.sessions.list_sessions(tenant, where)
    return SessionList(items=[session_view(s) for s in sessions])


@router.get("/sessions/{session_id}", response_model=SessionDetail, responses=_ERRORS)
async def get_session(session_id: SessionId, tenant: Tenant, state: State) -> SessionDetail:
    store = state.service.store
    session = await session_of(state, tenant, session_id)
    messages = await store.messages.recent(tenant, session_id, session.last_seq, HISTORY_LIMIT)
    replies = await store.outbox.for_session(tenant, session_id, last=HISTORY_LIMIT)
    return SessionDetail(
        **session_view(session).model_dump(),
        state=dict(session.state),
        messages=[message_view(m) for m in messages],
        replies=[reply_view(r) for r in replies],
    )


@router.get("/sessions/{session_id}/turns", response_model=TurnList, responses=_ERRORS)
async def list_turns(
    session_id: SessionId, tenant: Tenant, state: State, limit: Limit = 100
) -> TurnList:
    """The session's last ``limit`` turns, oldest first, each with its record."""
    store = state.service.store
    await session_of(state, tenant, session_id)
    turns = (await store.turns.list_turns(tenant, session_id))[-limit:]
    items = [turn_view(t, await store.turns.get_record(tenant, t.turn_id)) for t in turns]
    return TurnList(items=items)


@router.get("/sessions/{session_id}/events", response_model=EventList, responses=_ERRORS)
async def session_events(
    session_id: SessionId,
    tenant: Tenant,
    state: State,
    kind: Kinds = None,
    from_ms: Ms = None,
    to_ms: Ms = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Limit = 500,
) -> EventList:
    await session_of(state, tenant, session_id)
    query = EventQuery(session_id, tuple(kind or ()), after_id, from_ms, to_ms, limit)
    return await _events(state, tenant, query)


@router.get("/events", response_model=EventList, responses=_ERRORS)
async def tenant_events(
    tenant: Tenant,
    state: State,
    kind: Kinds = None,
    from_ms: Ms = None,
    to_ms: Ms = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Limit = 500,
) -> EventList:
    query = EventQuery(None, tuple(kind or ()), after_id, from_ms, to_ms, limit)
    return await _events(state, tenant, query)


async def _events(state: ApiState, tenant: str, query: EventQuery) -> EventList:
    events = await state.service.store.events.query(tenant, query)
    return EventList(items=[event_view(e) for e in events])


@router.get("/ledger", response_model=LedgerList, responses=_ERRORS, tags=["ledger"])
async def ledger(
    tenant: Tenant,
    state: State,
    customer: Annotated[str | None, Query(max_length=256)] = None,
    tool: Annotated[str | None, Query(max_length=64)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    from_ms: Ms = None,
    to_ms: Ms = None,
    limit: Limit = 500,
) -> LedgerList:
    where = LedgerQuery(
        customer=customer,
        tool=tool,
        session_id=session_id,
        from_ms=from_ms,
        to_ms=to_ms,
        limit=limit,
    )
    entries = await state.service.store.ledger.query(tenant, where)
    return LedgerList(items=[ledger_view(e) for e in entries])
