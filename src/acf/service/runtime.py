"""The runtime: wake-ups in, serialized turns and ordered deliveries out.

``start`` subscribes to wake-ups and recovers every non-terminal state left by an earlier
run (DESIGN §4): sessions with unconsumed messages or a live turn get their driver, and
sessions with undelivered replies get the relay. With ``recovery_interval_ms`` (workers
of the distributed mode) that scan repeats, for the work nobody holds: what a dead
process left, or what a lost wake-up did not announce. Sessions are worked on under
per-tenant limits, tenants served round-robin (DESIGN §15), and the total follows what the
process keeps up with (``admission.py``): a session waiting for a slot holds no lease.
Every ``idle_close.interval_ms`` the idle sessions due by their channel's policy close
(``idle_close.py``, DESIGN §15), each under its lease, so a close never races a turn; a
session outside agent mode never closes for idleness. Every ``mode_watch.interval_ms`` the
mode watch (``mode_watch.py``) marks handoffs past their SLA, sends the "still waiting"
notices, ends cool-downs and lifts expired blocks. Outside agent mode no turn of the agent
runs (``driver_modes.py``), and typing wakes nobody.

``stop`` takes no more work, lets the work in hand finish for ``grace_s``, then cancels
what is left and releases its leases; a turn cut off is re-run by whoever takes the
session next (same turn group).
"""

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from acf.domain.accumulation import Typing
from acf.domain.admission import AdmissionBounds, target_lag_ms
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.handoff import PeoplePolicies, default_policies
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.signals import TypingSignal
from acf.observability.people_metrics import PeopleMetrics
from acf.ports.channel_sender import ChannelSender, TypingSender
from acf.ports.checkpoints import Checkpoints, NoCheckpoints
from acf.ports.clock import Clock
from acf.ports.drafts import DraftBus
from acf.ports.event_store import AppendEvent
from acf.ports.firewall import PolicyBlocks
from acf.ports.store import Store
from acf.ports.wakeup import Subscription, WakeUps
from acf.service.admission import AdmissionControl
from acf.service.agents import Agents
from acf.service.fair_slots import FairSlots
from acf.service.idle_close import IdleCloser, IdleCloseSettings
from acf.service.lease_keeper import LeaseSettings
from acf.service.mode_watch import ModeWatch, ModeWatchSettings
from acf.service.relay import Relay
from acf.service.runtime_parts import RuntimeParts
from acf.service.session_driver import SessionDriver
from acf.service.session_workers import SessionWorkers
from acf.service.tasks import TaskSet

log = structlog.get_logger("acf.runtime")


@dataclass(frozen=True, slots=True)
class SlotSettings:
    total: int = 256
    """The most sessions worked on at once in the process (the ceiling of admission)."""
    per_tenant: int = 64
    adaptive: bool = True
    """Size the total to what the process keeps up with (``service/admission.py``), between
    ``min_total`` and ``total``."""
    min_total: int = 8


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    recovery_batch: int = 100_000
    recovery_interval_ms: int | None = None
    """Scan for unheld work this often (distributed workers); ``None``: at start only."""
    slots: SlotSettings | None = field(default_factory=SlotSettings)
    """Limits on sessions worked on at once in this process (admission, DESIGN §15);
    ``None``: none (every poked session takes its lease and runs at once)."""
    idle_close: IdleCloseSettings | None = field(default_factory=IdleCloseSettings)
    """Close idle sessions (DESIGN §15) with a sweep this often; ``None``: never."""
    mode_watch: ModeWatchSettings | None = field(default_factory=ModeWatchSettings)
    """Act on the session modes' deadlines (handoff SLA and notice, cool-down ends, block
    expiries) this often; ``None``: never (another process's watch does it)."""


class Runtime:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        agents: Agents,
        wakeups: WakeUps,
        sender: ChannelSender,
        checkpoints: Checkpoints | None = None,
        settings: RuntimeSettings | None = None,
        drafts: DraftBus | None = None,
        people: PeoplePolicies = default_policies,
        policy_blocks: PolicyBlocks | None = None,
        people_metrics: PeopleMetrics | None = None,
    ) -> None:
        """``drafts``: where running turns publish what they draft (``ctx.draft``); none:
        drafts go nowhere. ``people``: each tenant's handoff and firewall policy;
        ``people_metrics``: where the mode watch counts SLA breaches and waiting handoffs."""
        self.settings = settings or RuntimeSettings()
        self._wakeups = wakeups
        self._tasks = TaskSet()
        self.holder = f"runtime-{new_id()[:12]}"
        self.parts = RuntimeParts(
            store=store,
            clock=clock,
            agents=agents,
            tasks=self._tasks,
            checkpoints=checkpoints or NoCheckpoints(),
            lease=self.settings.lease,
            holder=self.holder,
            poke_relay=self._poke_relay,
            show_typing=sender.show_typing if isinstance(sender, TypingSender) else None,
            rescans=self.settings.recovery_interval_ms is not None,
            drafts=drafts,
            people=people,
            policy_blocks=policy_blocks,
        )
        self._relay = Relay(self.parts, sender)
        self._slots: FairSlots | None = None
        self._admission: AdmissionControl | None = None
        if (slots := self.settings.slots) is not None:
            self._slots = FairSlots(slots.total, slots.per_tenant)
            if slots.adaptive:
                lease = self.settings.lease
                bounds = AdmissionBounds(
                    min(slots.min_total, slots.total),
                    slots.total,
                    target_lag_ms(lease.ttl_ms, lease.renew_every_ms),
                )
                self._admission = AdmissionControl(self._slots, bounds)
        self._drivers = SessionWorkers("driver", self._tasks, clock, self._drive)
        self._deliveries = SessionWorkers("relay", self._tasks, clock, self._relay.deliver)
        self.idle_closer: IdleCloser | None = None
        if self.settings.idle_close is not None:
            self.idle_closer = IdleCloser(
                self.parts, self.settings.idle_close, self.notify, self._drivers.active
            )
        self.mode_watch: ModeWatch | None = None
        if self.settings.mode_watch is not None:
            self.mode_watch = ModeWatch(
                self.parts, self.settings.mode_watch, self.notify, people_metrics
            )
        self._started = False
        self._admitting: asyncio.Task[None] | None = None
        self._closing_idle: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None

    async def _drive(
        self, tenant: TenantId, session_id: SessionId, news: asyncio.Event
    ) -> int | None:
        if self._slots is None:
            return await SessionDriver(self.parts, tenant, session_id).drive(news)
        async with self._slots.slot(tenant):
            return await SessionDriver(self.parts, tenant, session_id).drive(news)

    def _poke_relay(self, tenant: TenantId, session_id: SessionId) -> None:
        self._deliveries.poke(tenant, session_id)

    @property
    def busy(self) -> int:
        """Sessions with a driver or a relay worker in this process now."""
        return len(self._drivers) + len(self._deliveries)

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("the runtime is already started")
        self._started = True
        subscription = self._wakeups.subscribe()
        self._tasks.spawn(self._listen(subscription), "wakeups")
        if self._admission is not None:
            # Not among the runtime's tasks: it is no work of its own (an idle runtime is
            # one whose tasks are the wake-up listener alone).
            self._admitting = asyncio.get_running_loop().create_task(
                self._admission.run(), name="admission"
            )
        await self.recover()
        if self.idle_closer is not None:
            # Not among the runtime's tasks either: a sweep that waits for its next turn is
            # no work in hand (an idle runtime still closes idle sessions).
            self._closing_idle = asyncio.get_running_loop().create_task(
                self.idle_closer.run(), name="idle-close"
            )
        if self.mode_watch is not None:  # no work in hand either, like the idle close
            self._watching = asyncio.get_running_loop().create_task(
                self.mode_watch.run(), name="mode-watch"
            )
        if self.settings.recovery_interval_ms is not None:
            self._tasks.spawn(self._keep_recovering(self.settings.recovery_interval_ms), "recovery")

    async def _keep_recovering(self, interval_ms: int) -> None:
        while True:
            await self.parts.clock.sleep(interval_ms / 1000)
            try:
                await self.recover(unheld=True)
            except Exception as exc:  # the store is away: try again at the next interval
                log.warning("recovery.failed", error=repr(exc), holder=self.holder)

    async def recover(self, unheld: bool = False) -> int:
        """Find work left by an earlier run and resume it; returns the sessions found.
        ``unheld``: only work no live lease covers (continuous recovery)."""
        now = self.parts.clock.now_ms()
        work = await self.parts.store.recovery.sessions_with_work(
            self.settings.recovery_batch, unheld_at_ms=now if unheld else None, now_ms=now
        )
        for item in work:
            if item.turns:
                self._drivers.poke(item.tenant, item.session_id)
            if item.deliveries:
                self._deliveries.poke(item.tenant, item.session_id)
        if work:
            log.info("recovery.resumed", sessions=len(work), holder=self.holder, unheld=unheld)
        return len(work)

    async def _listen(self, subscription: Subscription) -> None:
        try:
            async for wake in subscription:
                self._drivers.poke(wake.tenant, wake.session_id)
        finally:
            subscription.close()

    def poke(self, tenant: TenantId, session_id: SessionId) -> None:
        self._drivers.poke(tenant, session_id)

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        """Wake the session wherever its driver runs: this process, or (distributed mode)
        whichever worker hears the wake-up. Best effort, as every wake-up: the recovery
        scan finds what a lost one did not announce."""
        await self._wakeups.notify(tenant, session_id)

    async def typing(self, signal: TypingSignal) -> None:
        """Record the customer's typing (an event) and let the session react to it: an open
        window (DESIGN §5), or a ready reply held while the customer types
        (``service.typing_hold``); in agent mode only, since neither happens in another mode
        (the event is kept). The stored event is what a worker of the distributed mode
        reads: the signal reaches an API process, the session's turn runs elsewhere."""
        session = await self.parts.store.sessions.find_open(signal.key.tenant, signal.key)
        if session is None:
            return  # typing before any message says nothing about a window
        window = session.mode.agent_answers
        if window and self._drivers.active(signal.key.tenant, session.session_id):
            # Kept only while the session has work: a window or a held reply reads it, the
            # driver drops it when idle (typing older than the newest message is ignored).
            self.parts.typing[signal.key] = Typing(signal.active, signal.at_ms)
        kind = EventKind.TYPING_STARTED if signal.active else EventKind.TYPING_STOPPED
        correlation = Correlation(signal.key.tenant, new_trace_id(), session.session_id)
        await self.parts.store.uow.commit(
            signal.key.tenant, [AppendEvent(FabricEvent(kind, signal.at_ms, correlation))]
        )
        # Through the wake-ups: in distributed mode the session's driver is elsewhere. Only
        # an open window or a held reply reads typing, and both have unconsumed messages
        # (a RUNNING turn's range is consumed at its commit).
        if window and session.has_unconsumed:
            await self._wakeups.notify(signal.key.tenant, session.session_id)

    async def stop(self, grace_s: float = 0.0) -> None:
        """Take no more work; let the work in hand finish for up to ``grace_s``; then cut
        off what is left (re-run by whoever takes the session next) and release leases."""
        await self._stop_sweeps()
        if grace_s > 0:
            left = await asyncio.gather(
                self._drivers.drain(grace_s), self._deliveries.drain(grace_s)
            )
            log.info("runtime.drained", holder=self.holder, unfinished=sum(left))
        self._stop_admitting()
        await self._tasks.cancel_all()

    async def _stop_sweeps(self) -> None:
        # A close cut off keeps nothing: its lease expires, the session closes next time;
        # a check of the mode watch cut off is made again by the next one (its ops are
        # conditional).
        sweeps = [t for t in (self._closing_idle, self._watching) if t is not None]
        self._closing_idle = self._watching = None
        for task in sweeps:
            task.cancel()
        if sweeps:
            await asyncio.wait(sweeps)  # their end, without taking their cancellation as ours

    def _stop_admitting(self) -> None:
        if self._admitting is not None:
            self._admitting.cancel()
            self._admitting = None

    async def drop(self) -> None:
        """Simulate the process dying: every task stops where it is and nothing more is
        written (the harness closes the store first). For fault injection."""
        await self._stop_sweeps()
        self._stop_admitting()
        with contextlib.suppress(Exception):
            await self._tasks.cancel_all()
