"""The embedded runtime: wake-ups in, serialized turns and ordered deliveries out.

``start`` subscribes to wake-ups and recovers every non-terminal state left by an earlier
run (DESIGN §4): sessions with unconsumed messages or a live turn get their driver, and
sessions with undelivered replies get the relay. ``stop`` cancels the work in hand and
releases the leases; a turn cut off is re-run by the next start (same turn group).
"""

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from acf.domain.accumulation import Typing
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.signals import TypingSignal
from acf.ports.channel_sender import ChannelSender
from acf.ports.checkpoints import Checkpoints, NoCheckpoints
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.store import Store
from acf.ports.wakeup import Subscription, WakeUps
from acf.service.agents import Agents
from acf.service.lease_keeper import LeaseSettings
from acf.service.parts import Parts
from acf.service.relay import Relay
from acf.service.session_driver import SessionDriver
from acf.service.session_workers import SessionWorkers
from acf.service.tasks import TaskSet

log = structlog.get_logger("acf.runtime")


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    recovery_batch: int = 100_000


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
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self._wakeups = wakeups
        self._tasks = TaskSet()
        self.holder = f"runtime-{new_id()[:12]}"
        self.parts = Parts(
            store=store,
            clock=clock,
            agents=agents,
            tasks=self._tasks,
            checkpoints=checkpoints or NoCheckpoints(),
            lease=self.settings.lease,
            holder=self.holder,
            poke_relay=self._poke_relay,
        )
        self._relay = Relay(self.parts, sender)
        self._drivers = SessionWorkers("driver", self._tasks, clock, self._drive)
        self._deliveries = SessionWorkers("relay", self._tasks, clock, self._relay.deliver)
        self._started = False

    async def _drive(
        self, tenant: TenantId, session_id: SessionId, news: asyncio.Event
    ) -> int | None:
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
        await self.recover()

    async def recover(self) -> int:
        """Find work left by an earlier run and resume it; returns the sessions found."""
        work = await self.parts.store.recovery.sessions_with_work(self.settings.recovery_batch)
        for item in work:
            if item.turns:
                self._drivers.poke(item.tenant, item.session_id)
            if item.deliveries:
                self._deliveries.poke(item.tenant, item.session_id)
        if work:
            log.info("recovery.resumed", sessions=len(work), holder=self.holder)
        return len(work)

    async def _listen(self, subscription: Subscription) -> None:
        try:
            async for wake in subscription:
                self._drivers.poke(wake.tenant, wake.session_id)
        finally:
            subscription.close()

    def poke(self, tenant: TenantId, session_id: SessionId) -> None:
        self._drivers.poke(tenant, session_id)

    async def typing(self, signal: TypingSignal) -> None:
        """Record the customer's typing (an event) and let an open window react to it."""
        session = await self.parts.store.sessions.find_open(signal.key.tenant, signal.key)
        if session is None:
            return  # typing before any message says nothing about a window
        if self._drivers.active(signal.key.tenant, session.session_id):
            # Kept only while the session has work: a window reads it, the driver drops it
            # when idle (typing older than the window's last message is ignored anyway).
            self.parts.typing[signal.key] = Typing(signal.active, signal.at_ms)
        kind = EventKind.TYPING_STARTED if signal.active else EventKind.TYPING_STOPPED
        correlation = Correlation(signal.key.tenant, new_trace_id(), session.session_id)
        await self.parts.store.uow.commit(
            signal.key.tenant, [AppendEvent(FabricEvent(kind, signal.at_ms, correlation))]
        )
        self._drivers.poke(signal.key.tenant, session.session_id)

    async def stop(self) -> None:
        """Stop taking work; cut off running turns (re-run at the next start)."""
        await self._tasks.cancel_all()

    async def drop(self) -> None:
        """Simulate the process dying: every task stops where it is and nothing more is
        written (the harness closes the store first). For fault injection."""
        with contextlib.suppress(Exception):
            await self._tasks.cancel_all()
