"""The abuse firewall's side of the operator API: the tenant's block list, the sessions held
(cool-down, blocked, human mode) with their held messages, and the detectors' counts.

Scope ``operator`` or ``admin`` (an ``api`` key gets 403), the key's tenant only: another
tenant's block answers 404 as an unknown one does. Blocking and lifting commit the
``BlockCustomer`` / ``LiftBlock`` ops (their ``customer.blocked`` / ``customer.unblocked``
events name the key and carry the request's trace id), then wake the customer's open
sessions so a running turn stands down and held messages are dropped or answered at once.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_id
from acf.domain.modes import SessionMode
from acf.entrypoints.http.context import ApiState, OperatorKey, State
from acf.entrypoints.http.people_access import (
    COMMON_ERRORS,
    doc,
    may_be_id,
    not_found,
    refused,
    wake,
)
from acf.entrypoints.http.people_views import (
    AbuseSummary,
    BlockBody,
    BlockList,
    BlockView,
    HoldList,
    block_view,
    hold_view,
    no_findings,
)
from acf.ports.event_store import EventQuery
from acf.ports.firewall import BlockCustomer, LiftBlock
from acf.ports.session_store import SessionFilter, SessionStatus

router = APIRouter(prefix="/v1", tags=["people in the loop"])

HELD_MODES = (SessionMode.BLOCKED, SessionMode.HUMAN, SessionMode.COOLDOWN)
"""The modes in which the agent does not answer, strongest first."""
SUMMARY_PAGE = 500
SUMMARY_MAX_EVENTS = 50_000
"""Events a summary reads at most (``truncated`` says when more matched)."""
DAY_MS = 86_400_000
_SUMMARY_KINDS = (
    EventKind.ABUSE_SUSPECTED,
    EventKind.ABUSE_COOLDOWN_STARTED,
    EventKind.ABUSE_MESSAGES_DROPPED,
    EventKind.RATE_EXCEEDED,
)


async def _open_sessions(
    state: ApiState, tenant: TenantId, channel: Channel, customer: str
) -> list[SessionId]:
    where = SessionFilter(status=SessionStatus.OPEN, customer=customer, limit=1000)
    sessions = await state.service.store.sessions.list_sessions(tenant, where)
    return [s.session_id for s in sessions if s.key.channel is channel]


@router.post(
    "/blocks",
    status_code=201,
    response_model=BlockView,
    responses={
        **COMMON_ERRORS,
        409: doc("The customer already has an active block on the channel (`blocked`)"),
    },
    summary="Put a customer on the block list (their messages are stored, then dropped)",
)
async def block(body: BlockBody, request: Request, key: OperatorKey, state: State) -> BlockView:
    service = state.service
    now_ms = service.clock.now_ms()
    op = BlockCustomer(
        tenant=key.tenant,
        block_id=new_id(),
        channel=body.channel,
        customer=body.customer,
        reason=body.reason,
        created_by=key.key_id,
        at_ms=now_ms,
        trace_id=request.state.trace_id,
        expires_at_ms=None if body.expires_in_s is None else now_ms + body.expires_in_s * 1000,
    )
    try:
        added = (await service.store.uow.commit(key.tenant, [op])).get(op)
    except Conflict as exc:
        raise refused(exc, f"customer {body.customer!r} on {body.channel.value}") from None
    sessions = await _open_sessions(state, key.tenant, added.channel, added.customer)
    await wake(service, key.tenant, sessions)
    return block_view(added, now_ms)


@router.get("/blocks", response_model=BlockList, responses=COMMON_ERRORS)
async def list_blocks(
    key: OperatorKey,
    state: State,
    include_lifted: Annotated[
        bool, Query(description="Also the lifted and expired blocks (newest first).")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> BlockList:
    service = state.service
    found = await service.store.blocks.list_blocks(key.tenant, include_lifted, limit)
    now_ms = service.clock.now_ms()
    return BlockList(blocks=[block_view(b, now_ms) for b in found])


@router.delete(
    "/blocks/{block_id}",
    status_code=204,
    response_class=Response,
    responses={**COMMON_ERRORS, 404: doc("No such active block for this tenant")},
    summary="Lift a block (the customer's sessions go back to the agent)",
)
async def lift(block_id: str, request: Request, key: OperatorKey, state: State) -> Response:
    if not may_be_id(block_id):
        raise not_found(f"no active block {block_id!r}")
    service = state.service
    op = LiftBlock(
        tenant=key.tenant,
        block_id=block_id,
        lifted_by=key.key_id,
        at_ms=service.clock.now_ms(),
        trace_id=request.state.trace_id,
    )
    try:
        lifted = (await service.store.uow.commit(key.tenant, [op])).get(op)
    except Conflict as exc:
        if exc.reason == "not_found":
            raise not_found(f"no active block {block_id!r}") from None
        raise refused(exc, f"block {block_id}") from None
    sessions = await _open_sessions(state, key.tenant, lifted.channel, lifted.customer)
    await wake(service, key.tenant, sessions)
    return Response(status_code=204)


@router.get(
    "/holds",
    response_model=HoldList,
    responses=COMMON_ERRORS,
    summary="Open sessions the agent does not answer now (cool-down, blocked, human)",
)
async def holds(
    key: OperatorKey, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 200
) -> HoldList:
    store = state.service.store
    found = []
    for mode in HELD_MODES:
        where = SessionFilter(status=SessionStatus.OPEN, mode=mode, limit=limit)
        found += await store.sessions.list_sessions(key.tenant, where)
    found.sort(key=lambda s: (s.mode_since_ms or 0, s.session_id))
    return HoldList(sessions=[hold_view(s) for s in found[:limit]])


@router.get(
    "/abuse/summary",
    response_model=AbuseSummary,
    responses=COMMON_ERRORS,
    summary="What the firewall did since a time: findings, cool-downs, blocks, holds, drops",
)
async def abuse_summary(
    key: OperatorKey,
    state: State,
    since_ms: Annotated[
        int | None,
        Query(ge=0, le=2**53, description="Count events from this time (default: 24 h ago)."),
    ] = None,
) -> AbuseSummary:
    service, tenant = state.service, key.tenant
    now_ms = service.clock.now_ms()
    since = max(0, now_ms - DAY_MS) if since_ms is None else since_ms
    events, truncated = await _events_since(state, tenant, since)
    summary = AbuseSummary(
        since_ms=since,
        suspected=no_findings(),
        cooldowns_started=0,
        blocks_active=0,
        held_messages=0,
        dropped_messages=0,
        rate_exceeded=0,
        truncated=truncated,
    )
    for event in events:
        _count(summary, event)
    blocks = await service.store.blocks.list_blocks(tenant, limit=10_000)
    summary.blocks_active = sum(1 for b in blocks if b.active_at(now_ms))
    for mode in (SessionMode.COOLDOWN, SessionMode.BLOCKED):
        where = SessionFilter(status=SessionStatus.OPEN, mode=mode, limit=10_000)
        held = await service.store.sessions.list_sessions(tenant, where)
        summary.held_messages += sum(s.last_seq - s.consumed_seq for s in held)
    return summary


async def _events_since(
    state: ApiState, tenant: TenantId, since_ms: int
) -> tuple[list[FabricEvent], bool]:
    """The summary's events from ``since_ms``, page by page (a lookup, not a cursor: read
    without waiting for older transactions), at most ``SUMMARY_MAX_EVENTS``."""
    found: list[FabricEvent] = []
    after_id = 0
    while len(found) < SUMMARY_MAX_EVENTS:
        query = EventQuery(
            kinds=_SUMMARY_KINDS,
            after_id=after_id,
            from_ms=since_ms,
            limit=SUMMARY_PAGE,
            in_commit_order=False,
        )
        page = await state.service.store.events.query(tenant, query)
        found += page
        if len(page) < SUMMARY_PAGE or page[-1].event_id is None:
            return found, False
        after_id = page[-1].event_id
    return found[:SUMMARY_MAX_EVENTS], True


def _count(summary: AbuseSummary, event: FabricEvent) -> None:
    data = event.data
    if event.kind is EventKind.ABUSE_SUSPECTED:
        detector = data.get("detector")
        name = detector if detector in summary.suspected else "other"
        summary.suspected[name] = summary.suspected.get(name, 0) + 1
    elif event.kind is EventKind.ABUSE_COOLDOWN_STARTED:
        summary.cooldowns_started += 1
    elif event.kind is EventKind.ABUSE_MESSAGES_DROPPED:
        first, last = data.get("from_seq"), data.get("to_seq")
        if isinstance(first, int) and isinstance(last, int) and last > first:
            summary.dropped_messages += last - first
    elif event.kind is EventKind.RATE_EXCEEDED:
        summary.rate_exceeded += 1
