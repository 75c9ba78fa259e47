"""Server-sent events: a session's or a whole tenant's events, live.

Each event's SSE id is its store id (increasing, read in commit order), so a client that
reconnects with ``Last-Event-ID`` gets exactly what it missed, then the live tail. A
session's stream starts with the session's history; the tenant's starts now (after its
latest event) unless told where: ``?after_id=0`` for everything. A comment line every
``heartbeat_s`` keeps proxies from closing a quiet stream.

A session's stream with ``?drafts=true`` also carries the running turn's drafts (DESIGN
§16) as ``reply.draft`` events without an SSE id (they are not stored: a reconnect does
not replay them), merged with the stored events by a ``DraftFilter``: none of a turn once
its reply, failure or supersede was forwarded, none of a withdrawn attempt, none of a
lower attempt or fence. The tenant's stream carries no drafts.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from acf.domain.ids import SessionId, TenantId
from acf.entrypoints.http.context import ApiState, State, Tenant
from acf.entrypoints.http.routes_sessions import session_of
from acf.entrypoints.http.views import ErrorBody, event_view
from acf.ports.drafts import Draft
from acf.ports.event_store import EventQuery
from acf.service.drafts import DraftFilter

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
WithDrafts = Annotated[
    bool,
    Query(
        description="Also the running turn's drafts: `reply.draft` events without an id "
        "(`data`: attempt, fence, offset, text; the reply so far is its first `offset` "
        "characters, code points, followed by `text`)",
    ),
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
    request: Request,
    state: ApiState,
    tenant: TenantId,
    session_id: SessionId | None,
    after: int,
    with_drafts: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    store = state.service.store
    feed = state.service.feed
    loop = asyncio.get_running_loop()
    # Subscribed before the first read: no draft published from now on is missed.
    drafts = (
        state.service.drafts.subscribe(tenant, session_id) if with_drafts and session_id else None
    )
    shown = DraftFilter()
    try:
        while not await request.is_disconnected():
            news = feed.ticket(tenant)
            query = EventQuery(session_id=session_id, after_id=after, limit=BATCH)
            events = await store.events.query(tenant, query)
            for event in events:
                shown.observe(event)
                view = event_view(event)
                after = view.event_id
                yield ServerSentEvent(
                    data=json.dumps(view.model_dump(), separators=(",", ":")),
                    event=view.kind,
                    id=str(view.event_id),
                )
            if len(events) == BATCH:
                continue
            if drafts is None:
                await feed.wait(news, state.settings.poll_s)
                continue
            # Until news or the next poll, drafts go on as they come (the store is read
            # first when both are there, so a turn's end is known before its late drafts).
            poll_at = loop.time() + state.settings.poll_s
            while not news.is_set():
                for draft in drafts.drain():
                    if shown.admit(draft):
                        yield _draft_event(draft)
                left = poll_at - loop.time()
                if left <= 0:
                    break
                await _first(news.wait(), drafts.wait(), timeout_s=left)
    finally:
        if drafts is not None:
            drafts.close()


async def _first(*waits: Coroutine[Any, Any, Any], timeout_s: float) -> None:
    """Return when one of ``waits`` is done, or after ``timeout_s``; the others are
    cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _draft_event(draft: Draft) -> ServerSentEvent:
    """A draft as the stream carries it: shaped like a stored event, without an id."""
    body = {
        "kind": "reply.draft",
        "at_ms": draft.at_ms,
        "session_id": draft.session_id,
        "turn_id": draft.turn_id,
        "data": {
            "attempt": draft.attempt,
            "fence": draft.fence,
            "offset": draft.offset,
            "text": draft.text,
        },
    }
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return ServerSentEvent(data=data, event="reply.draft")


def _stream(
    request: Request,
    state: ApiState,
    tenant: TenantId,
    session_id: SessionId | None,
    after: int,
    with_drafts: bool = False,
) -> EventSourceResponse:
    return EventSourceResponse(
        _events(request, state, tenant, session_id, after, with_drafts),
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
    drafts: WithDrafts = False,
) -> EventSourceResponse:
    await session_of(state, tenant, session_id)
    start = start_after(last_event_id, after_id)
    return _stream(request, state, tenant, session_id, 0 if start is None else start, drafts)


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
