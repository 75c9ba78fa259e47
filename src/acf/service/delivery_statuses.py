"""Provider delivery statuses applied to the replies they name (DESIGN §9).

A provider reports sent → delivered → read (or failed) for a message it accepted, under
the id it gave on acceptance. Statuses come late, twice and out of order, so each is
applied monotonically (``DeliveryStatus.may_follow``): a row moves only forward, failed is
terminal, and a ``response.status`` event is committed with the change, in the same unit,
only when the row changed. A status for an id acf has not recorded changes nothing now: it
may have raced the relay's own record of the acceptance, so it is looked up again in the
background (``acf.service.status_rechecks``) and applied once the record is there; else it
was another sender's message.

A ``failed`` status is a definite failure: in the same unit, the row's one fallback copy
is queued on the next channel of the ladder (``acf.service.fallbacks``), and the relay is
poked to send it. A retried webhook finds the row failed already (terminal), so it queues
nothing twice; two at once are kept apart by the guard and the copy's unique key.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_trace_id
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.outbox import ApplyDeliveryStatus, OutboxRow
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.service import fallbacks
from acf.service.agents import Agents, pinned_or_none
from acf.service.status_rechecks import StatusRechecks


class StatusOutcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    """Repeated, or older than what the row already shows."""
    UNKNOWN = "unknown"
    """No reply of this tenant has that provider message id."""


@dataclass(frozen=True, slots=True)
class DeliveryStatuses:
    store: Store
    agents: Agents
    clock: Clock
    poke_relay: Callable[[TenantId, SessionId], None] | None = None
    """Who sends a fallback copy now; without it, the next recovery scan does."""
    reachable: Callable[[TenantId], frozenset[Channel]] | None = None
    """The channels a tenant's replies can leave on (``None``: any)."""
    rechecks: StatusRechecks | None = None
    """Where a status naming no recorded reply waits for the relay's record (``None``:
    it is dropped at once)."""

    async def apply(self, signal: DeliveryStatusSignal) -> StatusOutcome:
        """Apply ``signal`` now; UNKNOWN ones are looked up again later (``rechecks``)."""
        outcome = await self._apply(signal)
        if outcome is StatusOutcome.UNKNOWN and self.rechecks is not None:
            self.rechecks.schedule(signal, self._found)
        return outcome

    async def _found(self, signal: DeliveryStatusSignal) -> bool:
        return await self._apply(signal) is not StatusOutcome.UNKNOWN

    async def _apply(self, signal: DeliveryStatusSignal) -> StatusOutcome:
        tenant = signal.tenant
        row = await self.store.outbox.find_by_provider_id(tenant, signal.provider_message_id)
        if row is None:
            return StatusOutcome.UNKNOWN
        if not signal.status.may_follow(row.status):
            return StatusOutcome.STALE
        now = self.clock.now_ms()
        data: dict[str, Any] = {
            "outbox_id": row.outbox_id,
            "turn_id": row.turn_id,
            "position": row.position,
            "status": signal.status.value,
            "previous": row.status.value,
            "provider_message_id": signal.provider_message_id,
            "provider_at_ms": signal.at_ms,
        }
        if signal.error is not None:
            data["error"] = signal.error
        change = ApplyDeliveryStatus(
            row.outbox_id, signal.status, now, error=signal.error, guard=True
        )
        session = await self.store.sessions.get(tenant, row.session_id)
        correlation = await self._correlation(tenant, row, session)
        then: list[WriteOp[Any]] = []
        plan = None
        if signal.status is DeliveryStatus.FAILED and session is not None:
            route = row.route or fallbacks.default_route(session, None)
            reach = None if self.reachable is None else self.reachable(tenant)
            plan = await fallbacks.plan(
                self.store, self.agents, session, row, route, correlation, now, reach
            )
            data.update(plan.audit)
            then = plan.ops
        event = FabricEvent(EventKind.RESPONSE_STATUS, now, correlation, data)
        try:
            await self.store.uow.commit(tenant, [change, AppendEvent(event), *then])
        except Conflict:  # another status moved the row past this one meanwhile
            return StatusOutcome.STALE
        if plan is not None and plan.enqueued and self.poke_relay is not None:
            self.poke_relay(tenant, row.session_id)
        return StatusOutcome.APPLIED

    async def _correlation(
        self, tenant: TenantId, row: OutboxRow, session: SessionRecord | None
    ) -> Correlation:
        turn = await self.store.turns.get(tenant, row.turn_id)
        pinned = None if session is None else await pinned_or_none(self.agents, session)
        return Correlation(
            tenant=tenant,
            trace_id=turn.trace_id if turn else new_trace_id(),
            session_id=row.session_id,
            turn_id=row.turn_id,
            group_id=turn.group_id if turn else None,
            agent_version=pinned.binding.agent_version if pinned else None,
            config_version=pinned.config_version if pinned else self.agents.label(tenant),
        )
