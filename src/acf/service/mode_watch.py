"""The mode watch: the time-driven side of session modes (DESIGN §15, issue 22).

Every process that works (embedded, distributed worker) runs one, every ``interval_ms``
(5 s by default), for each tenant it serves, each step on its own (one failing stops no
other):

1. **Handoffs.** The open handoffs due for an action (``Handoffs.due``: of sessions in
   human mode, unclaimed, earliest due first, at most ``batch``; acting on one takes it
   off, so a backlog is worked through check by check) are judged by the pure
   ``acf.domain.handoff.sla_actions``: past the SLA, ``MarkSlaBreached`` (its event, and
   ``acf_handoff_sla_breaches_total``); unclaimed and unanswered past
   ``still_waiting_after_ms``, ``MarkStillWaiting`` with the tenant's notice, an outbox row,
   after which the session is woken so its relay sends it. Both ops are conditional in the
   store (on human mode too: a blocked customer is never told), so with several processes
   watching, each happens once: the process whose op returned True counts and wakes. The
   ``acf_handoffs_waiting`` gauge is set at every check from a count
   (``Handoffs.waiting_count``).
2. **Cool-downs that ended** (``RecoveryScanner.ended_cooldowns``: sessions in mode
   ``cooldown`` with ``mode_until_ms <= now``, earliest first, at most ``batch``).
   One that holds messages is woken, not ended here: its driver ends the cool-down under
   the lease in the same unit that opens the ONE agent turn answering them, so that turn's
   record says it answers held messages (``driver_modes``); a lost wake-up is repeated at
   the next check, and the recovery scan lists such sessions too. One that holds nothing is
   ended here (``EndCooldown``, conditional: a no-op when another process did it).
3. **Blocks that expired** (``Blocks.expired``) are lifted (``LiftBlock``, ``lifted_by
   "expiry"``): their sessions go back to the mode the block interrupted (agent mode,
   or human mode or a cool-down that has not ended), and those with messages not yet
   dropped are woken (a driver in agent mode answers them; one in another mode waits).
   A lift another process made first is a ``Conflict``, skipped.
4. **Counters** older than ``keep_counters_ms`` (2 days) are pruned, at most every
   ``prune_every_ms``.

A check starts with one cross-tenant read of which tenants have anything to look at
(``RecoveryScanner.mode_work``: open handoffs, ended cool-downs, expired blocks), so an
idle fleet costs one read a check whatever its number of tenants; then the reads are
tenant-scoped (each at most ``batch`` rows a check; the next check goes on). Time is the
runtime's clock; the conditional ops compare with the time they are given.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from acf.domain.errors import Conflict
from acf.domain.handoff import SlaBreach, StillWaiting, sla_actions
from acf.domain.ids import SessionId, TenantId, new_trace_id
from acf.domain.modes import BLOCK_EXPIRY
from acf.observability.people_metrics import PeopleMetrics
from acf.observability.redaction import error_text
from acf.ports.firewall import DAY_MS, Block, LiftBlock
from acf.ports.handoffs import Handoff, MarkSlaBreached, MarkStillWaiting
from acf.ports.session_modes import EndCooldown
from acf.ports.session_store import SessionFilter, SessionStatus
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.mode_watch")

Wake = Callable[[TenantId, SessionId], Awaitable[None]]
Step = Callable[[TenantId, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ModeWatchSettings:
    interval_ms: int = 5_000
    """How often the watch checks: an SLA, a notice, a cool-down's end or a block's expiry
    is acted on at most this late."""
    batch: int = 500
    """Rows read per tenant and per step at each check."""
    prune_every_ms: int = 3_600_000
    keep_counters_ms: int = 2 * DAY_MS
    """Per-customer counters older than this are pruned."""

    def __post_init__(self) -> None:
        if min(self.interval_ms, self.batch, self.prune_every_ms, self.keep_counters_ms) <= 0:
            raise ValueError(
                "mode watch: interval_ms, batch, prune_every_ms and keep_counters_ms must be "
                "positive"
            )


class ModeWatch:
    """The watch of one process. ``wake`` publishes a session's wake-up (wherever its driver
    runs); ``metrics``: where breaches and waiting handoffs are counted (None: nowhere)."""

    def __init__(
        self,
        parts: RuntimeParts,
        settings: ModeWatchSettings,
        wake: Wake,
        metrics: PeopleMetrics | None = None,
    ) -> None:
        self._parts = parts
        self._settings = settings
        self._wake = wake
        self._metrics = metrics
        self._pruned_at_ms: int | None = None
        self._waiting: set[TenantId] = set()
        """Tenants whose waiting gauge this watch set above zero."""

    async def run(self) -> None:
        """Check every ``interval_ms`` until cancelled; a failed check is tried again at the
        next interval."""
        while True:
            await self._parts.clock.sleep(self._settings.interval_ms / 1000)
            try:
                await self.tick()
            except Exception as exc:  # the store is away: the next check tries again
                log.warning("mode_watch.failed", error=error_text(exc))

    async def tick(self) -> None:
        """One check of the tenants this process serves: one cross-tenant read says which
        have anything to look at (``RecoveryScanner.mode_work``), then each of those is
        read and acted on, its steps side by side (they touch different rows)."""
        p = self._parts
        now = p.clock.now_ms()
        served = set(p.agents.tenants())
        work = [w for w in await p.store.recovery.mode_work(now) if w.tenant in served]
        steps: list[Awaitable[None]] = []
        for w in work:
            if w.handoffs:
                steps.append(self._step(self._handoffs, w.tenant, now))
            if w.cooldowns:
                steps.append(self._step(self._cooldowns, w.tenant, now))
            if w.blocks:
                steps.append(self._step(self._blocks, w.tenant, now))
        if self._metrics is not None:  # none open any more: none waiting
            for tenant in self._waiting - {w.tenant for w in work if w.handoffs}:
                self._metrics.handoffs_waiting(tenant, 0)
                self._waiting.discard(tenant)
        if self._pruned_at_ms is None or now - self._pruned_at_ms >= self._settings.prune_every_ms:
            self._pruned_at_ms = now
            steps += [self._step(self._prune, tenant, now) for tenant in sorted(served)]
        await asyncio.gather(*steps)

    async def _step(self, step: Step, tenant: TenantId, now: int) -> None:
        try:
            await step(tenant, now)
        except Exception as exc:  # one step's trouble stops no other
            log.warning(
                "mode_watch.step_failed",
                tenant=tenant,
                step=step.__name__.lstrip("_"),
                error=error_text(exc),
            )

    async def _handoffs(self, tenant: TenantId, now: int) -> None:
        p = self._parts
        handoffs = p.store.handoffs
        if self._metrics is not None:
            self._metrics.handoffs_waiting(tenant, await handoffs.waiting_count(tenant, now))
            self._waiting.add(tenant)
        policy = p.people(tenant).handoff
        # Only what is due, earliest first: what this check leaves, the next one reads.
        still_after = policy.still_waiting_after_ms if policy.still_waiting_notice else 0
        due = await handoffs.due(tenant, now, policy.sla_ms, still_after, self._settings.batch)
        for handoff in due:
            for action in sla_actions(handoff, policy, now):
                if isinstance(action, SlaBreach):
                    await self._breached(tenant, handoff, action, now)
                else:
                    await self._still_waiting(tenant, handoff, action, now)

    async def _breached(
        self, tenant: TenantId, handoff: Handoff, action: SlaBreach, now: int
    ) -> None:
        op = MarkSlaBreached(tenant, action.handoff_id, now, action.waited_ms)
        if not (await self._parts.store.uow.commit(tenant, [op])).get(op):
            return  # another process marked it first
        if self._metrics is not None:
            self._metrics.sla_breached(tenant)
        log.info(
            "handoff.sla_breached",
            tenant=tenant,
            session_id=handoff.session_id,
            handoff_id=action.handoff_id,
            waited_ms=action.waited_ms,
        )

    async def _still_waiting(
        self, tenant: TenantId, handoff: Handoff, action: StillWaiting, now: int
    ) -> None:
        op = MarkStillWaiting(tenant, action.handoff_id, now, action.notice)
        if not (await self._parts.store.uow.commit(tenant, [op])).get(op):
            return  # sent already, or claimed, resolved or blocked meanwhile
        session_id = handoff.session_id
        log.info(
            "handoff.still_waiting", tenant=tenant, session_id=session_id, handoff_id=op.handoff_id
        )
        await self._wake(tenant, session_id)  # its driver pokes the relay: the notice goes

    async def _cooldowns(self, tenant: TenantId, now: int) -> None:
        p = self._parts
        for ended in await p.store.recovery.ended_cooldowns(tenant, now, self._settings.batch):
            if ended.held:
                # Its driver ends the cool-down with the turn answering the held messages.
                await self._wake(tenant, ended.session_id)
                continue
            op = EndCooldown(tenant, ended.session_id, now)
            if (await p.store.uow.commit(tenant, [op])).get(op):
                log.info("cooldown.ended", tenant=tenant, session_id=ended.session_id)

    async def _blocks(self, tenant: TenantId, now: int) -> None:
        p = self._parts
        for block in await p.store.blocks.expired(tenant, now, self._settings.batch):
            op = LiftBlock(tenant, block.block_id, BLOCK_EXPIRY, now, new_trace_id())
            try:
                await p.store.uow.commit(tenant, [op])
            except Conflict:
                continue  # lifted meanwhile (another process, an operator)
            log.info("block.expired", tenant=tenant, block_id=block.block_id)
            await self._wake_blocked(block)

    async def _wake_blocked(self, block: Block) -> None:
        """Wake the customer's open sessions on the block's channel that have messages
        not yet dropped: the agent answers them now."""
        where = SessionFilter(status=SessionStatus.OPEN, customer=block.customer)
        sessions = await self._parts.store.sessions.list_sessions(block.tenant, where)
        await asyncio.gather(
            *(
                self._wake(block.tenant, s.session_id)
                for s in sessions
                if s.key.channel is block.channel and s.has_unconsumed
            )
        )

    async def _prune(self, tenant: TenantId, now: int) -> None:
        before = now - self._settings.keep_counters_ms
        pruned = await self._parts.store.customer_rates.prune(tenant, before)
        if pruned:
            log.info("customer_counters.pruned", tenant=tenant, rows=pruned)
