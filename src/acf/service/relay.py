"""The outbox relay (DESIGN §4 step 5): committed replies to the channel, in order.

It runs outside the session lease, so a slow provider never blocks the next turn. Per
session, rows go one at a time in (commit, position) order; the provider's acceptance is
recorded (with the attempt count) right after the call, so a row is sent again only when
the process died between the two (DESIGN §3 invariant 6). A definite refusal marks the row
failed and, in the same unit, queues its one fallback copy on the next channel of the
ladder (``acf.service.fallbacks``), which takes the failed row's place in the order;
anything else (a timeout, a 5xx) is counted and retried with backoff, to the same address,
keeping the order, and never falls back. A later part of a paced reply that has not gone
out when the customer writes again is cut instead of sent (``acf.service.reply_cut``, the
one exception to invariant 6): the newer message's turn answers.

A row goes where it was addressed (a fallback copy, a notice) or where its first attempt
went, else where the customer last wrote: their newest message's channel and address (a
session continued on another channel is answered there).

One relay per session at a time, across processes: the relay holds the session's delivery
lease (``delivery_lease_id``) while it sends, renewed in the background; a relay that
cannot take it leaves the session to the holder (``RuntimeParts.held_elsewhere``).
"""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final

import structlog

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.ids import SessionId, TenantId, new_trace_id
from acf.domain.messages import InboundMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus
from acf.observability.trace_context import traced
from acf.ports.channel_reach import ChannelReach
from acf.ports.channel_sender import ChannelSender, DeliveryError, OutboundMessage
from acf.ports.checkpoints import Phase
from acf.ports.claims import DeliveryClaim
from acf.ports.event_store import AppendEvent
from acf.ports.lease import delivery_lease_id
from acf.ports.outbox import ApplyDeliveryStatus, OutboxRow, RecordAttempt, RecordPartsSent
from acf.ports.session_store import SessionRecord
from acf.ports.unit_of_work import WriteOp
from acf.service import fallbacks
from acf.service.agents import pinned_or_none
from acf.service.fallbacks import default_route
from acf.service.lease_keeper import LeaseKeeper
from acf.service.reply_cut import CutOutcome, cut_if_answered_later, may_cut
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.relay")

SENDS_PER_TENANT = 16
"""Provider calls in flight at once per tenant in one process: a slow provider queues
that tenant's replies only, and the shared HTTP client's pool stays small (httpcore
looks at every queued request and connection on each of its events)."""
MAX_BACKOFF_MS = 60_000
FIRST_BACKOFF_MS = 1_000
_NO_SEQ_LIMIT = 2**62
"""Above any message's seq: ``recent(…, _NO_SEQ_LIMIT, 1)`` is the newest message."""


class _Reread:
    """The session's order changed under the relay (a fallback copy was queued)."""


_REREAD: Final = _Reread()


def retry_delay_ms(attempts: int) -> int:
    """Backoff after ``attempts`` failed sends of one row: 1 s, 2 s, 4 s ... capped at 60 s."""
    return int(min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** max(0, attempts - 1)))


class Relay:
    def __init__(self, parts: RuntimeParts, sender: ChannelSender) -> None:
        self._parts = parts
        self._sender = sender
        self._sending: dict[TenantId, asyncio.Semaphore] = {}

    async def deliver(
        self, tenant: TenantId, session_id: SessionId, news: asyncio.Event
    ) -> int | None:
        p = self._parts
        news.clear()  # what this look covers; a poke from now on means another look
        claiming = p.store.claims.claim_delivery(tenant, session_id, p.holder, p.lease.ttl_ms)
        held = await LeaseKeeper.claim(p.store.lease, p.clock, p.lease, p.tasks, claiming)
        if held is None:
            return await p.held_elsewhere(tenant, delivery_lease_id(session_id))
        keeper, claim = held
        # A row's correlation (its turn's trace) is read while the row is being sent: only
        # the record after the send needs it.
        correlations: dict[str, asyncio.Task[Correlation]] = {}
        try:
            return await self._rows(tenant, session_id, claim, news, keeper, correlations)
        finally:
            for pending in correlations.values():
                pending.cancel()
            await asyncio.gather(*correlations.values(), return_exceptions=True)
            await keeper.release()

    async def _rows(
        self,
        tenant: TenantId,
        session_id: SessionId,
        claim: DeliveryClaim,
        news: asyncio.Event,
        keeper: LeaseKeeper,
        correlations: dict[str, "asyncio.Task[Correlation]"],
    ) -> int | None:
        p = self._parts
        rows, session, newest = claim.rows, claim.session, claim.newest  # read with the lease
        while True:
            if session is None or not rows:
                return None
            default = default_route(session, newest)
            for row in rows:
                # A send cannot be fenced: stop unless the lease cannot have expired by our own
                # clock (a stalled relay may have been taken over without knowing it yet).
                if not keeper.may_act_outside():
                    return p.lease.ttl_ms  # another relay may have it now: look again later
                if row.turn_id not in correlations:
                    correlations[row.turn_id] = asyncio.ensure_future(
                        self._correlation(session, row)
                    )
                route = row.route or default
                key = SessionKey(tenant, session.key.agent, route.address, route.channel)
                outbound = OutboundMessage(
                    key, row.outbox_id, row.payload, last_wrote_at(newest, route), row.parts_sent
                )
                with traced(row.trace_id):  # the provider's calls carry the turn's trace
                    paused = await self._pace(outbound, row, newest, session)
                    step = None
                    if may_cut(row, paused):
                        step = await self._cut(claim, row, rows, correlations[row.turn_id])
                    if step is None:
                        step = await self._send(
                            outbound, row, route, session, correlations[row.turn_id]
                        )
                if step is _REREAD:
                    break  # a fallback copy took the failed row's place, or the rest of a
                    # reply was cut: read the order again
                if isinstance(step, int):
                    return step
            news.clear()
            rows, session, newest = await asyncio.gather(
                p.store.outbox.undelivered(tenant, session_id),
                p.store.sessions.get(tenant, session_id),
                self._newest(tenant, session_id),
            )

    async def _correlation(self, session: SessionRecord, row: OutboxRow) -> Correlation:
        """The row's turn's correlation, read while the row is sent. It never raises: the
        send may already be accepted, and a failure here must not keep its record (and
        so the row's resend) waiting. Without the turn or the agent, the record goes out
        with what is known. The versions are those the session is pinned to."""
        p, tenant = self._parts, session.key.tenant
        try:
            turn = await p.store.turns.get(tenant, row.turn_id)
        except Exception as exc:  # the store failed: the record says less, the row is sent once
            log.warning("delivery.correlation_unread", tenant=tenant, error=repr(exc))
            turn = None
        pinned = await pinned_or_none(p.agents, session)
        return Correlation(
            tenant=tenant,
            trace_id=turn.trace_id if turn else new_trace_id(),
            session_id=row.session_id,
            turn_id=row.turn_id,
            group_id=turn.group_id if turn else None,
            agent_version=pinned.binding.agent_version if pinned else None,
            config_version=pinned.config_version if pinned else p.agents.label(tenant),
        )

    async def _newest(self, tenant: TenantId, session_id: SessionId) -> InboundMessage | None:
        """The customer's newest message: where and when they last wrote."""
        last = await self._parts.store.messages.recent(tenant, session_id, _NO_SEQ_LIMIT, 1)
        return last[-1] if last else None

    async def _pace(
        self,
        outbound: OutboundMessage,
        row: OutboxRow,
        newest: InboundMessage | None,
        session: SessionRecord,
    ) -> int:
        """Before a reply's later segment (its first try): the pipeline's ``delay_ms`` or the
        channel's ``segment_pacing_ms`` (in the session's version), whichever is longer,
        with the typing indicator shown meanwhile where the channel has one, so segments
        read as someone writing. Returns the pause, in milliseconds."""
        p, key = self._parts, outbound.key
        delay = int(row.payload.get("delay_ms", 0) or 0)
        pinned = None
        if row.position > 0 and row.attempts == 0:
            pinned = await pinned_or_none(p.agents, session)  # its version's channel policy
        if pinned is not None:
            settings = pinned.binding.settings
            delay = max(delay, settings.policy_for(key.channel).segment_pacing_ms)
            caps = settings.capabilities_for(key.channel)
            if delay > 0 and caps.typing_indicator and p.show_typing and newest is not None:
                try:
                    await p.show_typing(key, newest.provider_message_id)
                except Exception as exc:  # best effort, as while a turn runs
                    log.info("typing.not_shown", tenant=key.tenant, error=repr(exc))
        if delay > 0:
            await p.clock.sleep(delay / 1000)
        return delay

    async def _cut(
        self,
        claim: DeliveryClaim,
        row: OutboxRow,
        rows: Sequence[OutboxRow],
        correlating: "asyncio.Task[Correlation]",
    ) -> int | _Reread | None:
        """After a later part's pause: ``None`` to send it, ``_REREAD`` when it and the rest
        of its reply were cut (the customer wrote again), or a delay to look again after
        when the cut was refused (the delivery lease or the row changed meanwhile)."""
        p = self._parts
        cut = await cut_if_answered_later(p.store, p.clock, claim.lease, row, rows, correlating)
        if cut is CutOutcome.KEEP:
            return None
        return _REREAD if cut is CutOutcome.CUT else FIRST_BACKOFF_MS

    async def _send(
        self,
        outbound: OutboundMessage,
        row: OutboxRow,
        route: Route,
        session: SessionRecord,
        correlating: "asyncio.Task[Correlation]",
    ) -> int | _Reread | None:
        """Send one row: ``None`` when done with it, a delay to retry after, or
        ``_REREAD`` when its fallback copy was queued."""
        p = self._parts
        tenant = outbound.key.tenant
        attempt = row.attempts + 1
        sending = self._sending.setdefault(tenant, asyncio.Semaphore(SENDS_PER_TENANT))
        try:
            async with sending:
                receipt = await self._sender.send(outbound)
        except DeliveryError as exc:
            if exc.definite:
                correlation = await correlating
                return await self._failed(row, route, session, correlation, attempt, exc)
            return await self._transient(tenant, row, route, attempt, exc)
        except Exception as exc:  # a timeout or a crash of the adapter: outcome unknown
            return await self._transient(tenant, row, route, attempt, exc)
        await p.checkpoints.reached(Phase.SEND_ACCEPTED, tenant, row.session_id)
        correlation = await correlating
        await self._record(
            tenant=tenant,
            row=row,
            route=route,
            status=DeliveryStatus.SENT,
            correlation=correlation,
            kind=EventKind.RESPONSE_DELIVERED,
            provider_message_id=receipt.provider_message_id,
            attempt=attempt,
        )
        await p.checkpoints.reached(Phase.DELIVERED, tenant, row.session_id)
        return None

    async def _failed(
        self,
        row: OutboxRow,
        route: Route,
        session: SessionRecord,
        correlation: Correlation,
        attempt: int,
        exc: DeliveryError,
    ) -> int | _Reread | None:
        """Mark the row failed and, in the same unit, queue its fallback copy if the
        ladder has somewhere to go (DESIGN §9)."""
        p = self._parts
        tenant = session.key.tenant
        reach = self._sender.reachable(tenant) if isinstance(self._sender, ChannelReach) else None
        plan = await fallbacks.plan(
            p.store, p.agents, session, row, route, correlation, p.clock.now_ms(), reach
        )
        try:
            await self._record(
                tenant=tenant,
                row=row,
                route=route,
                status=DeliveryStatus.FAILED,
                correlation=correlation,
                kind=EventKind.RESPONSE_FAILED,
                error=str(exc),
                attempt=attempt,
                extra=plan.audit,
                then=plan.ops,
            )
        except Conflict as conflict:  # the row changed meanwhile: look at it again
            log.warning(
                "delivery.fallback_conflict",
                tenant=tenant,
                outbox_id=row.outbox_id,
                error=conflict.reason,
            )
            return FIRST_BACKOFF_MS
        if plan.enqueued:
            log.info(
                "delivery.fallback",
                tenant=tenant,
                session_id=row.session_id,
                outbox_id=row.outbox_id,
                to=plan.decision.route and plan.decision.route.channel.value,
            )
            return _REREAD
        return None

    async def _transient(
        self, tenant: TenantId, row: OutboxRow, route: Route, attempt: int, exc: Exception
    ) -> int:
        """Count the failed attempt (and the parts it got accepted); the row is sent again
        after the backoff, to the same address, from its first part not accepted (the first
        try may still arrive: it never falls back)."""
        now = self._parts.clock.now_ms()
        accepted = exc.parts_accepted if isinstance(exc, DeliveryError) else 0
        ops: list[WriteOp[Any]] = [RecordAttempt(row.outbox_id, now, route)]
        if accepted:
            ops.append(RecordPartsSent(row.outbox_id, accepted, now))
        await self._parts.store.uow.commit(tenant, ops)
        delay = retry_delay_ms(attempt)
        if isinstance(exc, DeliveryError) and exc.retry_after_ms is not None:
            delay = max(delay, exc.retry_after_ms)  # the provider asked to wait
        log.warning(
            "delivery.retry",
            tenant=tenant,
            session_id=row.session_id,
            outbox_id=row.outbox_id,
            attempt=attempt,
            retry_in_ms=delay,
            error=repr(exc),
        )
        return delay

    async def _record(
        self,
        *,
        tenant: TenantId,
        row: OutboxRow,
        route: Route,
        status: DeliveryStatus,
        correlation: Correlation,
        kind: EventKind,
        provider_message_id: str | None = None,
        error: str | None = None,
        attempt: int = 0,
        extra: Mapping[str, Any] | None = None,
        then: Sequence[WriteOp[Any]] = (),
    ) -> None:
        now = self._parts.clock.now_ms()
        data: dict[str, Any] = {
            "outbox_id": row.outbox_id,
            "turn_id": row.turn_id,
            "position": row.position,
            "attempt": attempt,
            "queued_at_ms": row.created_at_ms,
            "channel": route.channel.value,
        }
        if kind is EventKind.RESPONSE_DELIVERED:
            # What reached the customer, so a timeline (or the web chat) can show it.
            data["text"] = row.payload.get("text", "")
            data["buttons"] = list(row.payload.get("buttons", []))
        if provider_message_id is not None:
            data["provider_message_id"] = provider_message_id
        if error is not None:
            data["error"] = error
        data.update(extra or {})
        ops: list[WriteOp[Any]] = [
            RecordAttempt(row.outbox_id, now, route),
            ApplyDeliveryStatus(row.outbox_id, status, now, provider_message_id, error),
            AppendEvent(FabricEvent(kind, now, correlation, data)),
            *then,
        ]
        await self._parts.store.uow.commit(tenant, ops)


def last_wrote_at(newest: InboundMessage | None, route: Route) -> int | None:
    """When the customer last wrote from where this row goes: the newest message's time
    if it came from that channel and address, else unknown (a window such as WhatsApp's
    24 hours then counts as closed: a message on another channel does not open it)."""
    if newest is None or (newest.key.channel, newest.key.customer) != (
        route.channel,
        route.address,
    ):
        return None
    return newest.provider_timestamp_ms or newest.received_at_ms
