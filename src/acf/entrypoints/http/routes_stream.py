"""Server-sent events: a session's or a whole tenant's events, live.

Each event's SSE id is its store id (increasing, read in commit order), so a client that
reconnects with ``Last-Event-ID`` gets exactly what it missed, then the live tail. A
session's stream starts with the session's history; the tenant's starts now (after its
latest event) unless told where: ``?after_id=0`` for everything. A comment line every
``heartbeat_s`` keeps proxies from closing a quiet stream.
"""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from acf.domain.ids import SessionId, TenantId
from acf.entrypoints.http.context import ApiState, State, Tenant
from acf.entrypoints.http.routes_sessions import session_of
from acf.entrypoints.http.views import ErrorBody, event_view
from acf.ports.event_store import EventQuery

router = APIRouter(prefix="/v1", tags=["streams"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "No such session for this tenant"},
}
BATCH = 500
LastEventId = Annotated[
    int | None, Header(alias="Last-Event-ID", ge=0, le=2**62, description="Resume after it")
]
AfterId = Annotated[
    int | None,
    Query(ge=0, le=2**62, description="Like Last-Event-ID (which wins when both are given)"),
]
TenantAfterId = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**62,
        description="Like Last-Event-ID; without either the stream starts now, 0: from the start",
    ),
]


def start_after(last_event_id: int | None, after_id: int | None) -> int | None:
    """The id a stream starts after: ``Last-Event-ID``, else ``?after_id=``; None when the
    client named neither."""
    return last_event_id if last_event_id is not None else after_id


async def _events(
    request: Request, state: ApiState, tenant: TenantId, session_id: SessionId | None, after: int
) -> AsyncIterator[ServerSentEvent]:
    store = state.service.store
    feed = state.service.feed
    while not await request.is_disconnected():
        news = feed.ticket(tenant)
        query = EventQuery(session_id=session_id, after_id=after, limit=BATCH)
        events = await store.events.query(tenant, query)
        for event in events:
            view = event_view(event)
            after = view.event_id
            yield ServerSentEvent(
                data=json.dumps(view.model_dump(), separators=(",", ":")),
                event=view.kind,
                id=str(view.event_id),
            )
        if len(events) < BATCH:
            await feed.wait(news, state.settings.poll_s)


def _stream(
    request: Request, state: ApiState, tenant: TenantId, session_id: SessionId | None, after: int
) -> EventSourceResponse:
    return EventSourceResponse(
        _events(request, state, tenant, session_id, after),
        ping=state.settings.heartbeat_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/sessions/{session_id}/stream", responses=_ERRORS, response_model=None)
async def session_stream(
    session_id: SessionId,
    request: Request,
    tenant: Tenant,
    state: State,
    last_event_id: LastEventId = None,
    after_id: AfterId = None,
) -> EventSourceResponse:
    await session_of(state, tenant, session_id)
    start = start_after(last_event_id, after_id)
    return _stream(request, state, tenant, session_id, 0 if start is None else start)


@router.get("/stream", responses=_ERRORS, response_model=None)
async def tenant_stream(
    request: Request,
    tenant: Tenant,
    state: State,
    last_event_id: LastEventId = None,
    after_id: TenantAfterId = None,
) -> EventSourceResponse:
    start = start_after(last_event_id, after_id)
    if start is None:  # from now
        start = await state.service.store.events.last_id(tenant)
    return _stream(request, state, tenant, None, start)
