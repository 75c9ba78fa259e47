"""The harness: the embedded runtime on a real SQLite file, driven by a virtual clock.

It sends messages through the real ingress, delivers through a ``RecordingChannel``, and
injects faults: ``crash()`` drops the runtime where it stands (nothing more is written,
as when a process dies) and starts a new one on the same file; ``crash_at(phase)`` does it
when the runtime reaches a checkpoint; ``steal_lease`` makes another holder take a
session's lease. Time moves only in ``advance``; between steps the harness waits until
every task is blocked (on the clock, a wake-up, or nothing), so runs are deterministic.

Each tenant's people policy (``HarnessOptions.people``: handoff and firewall) reaches the
runtime, and the abuse firewall inspects every message ingress accepts; by default the
handoff has the product's defaults and the firewall is off (``HARNESS_PEOPLE``), so a
scenario about something else is not cooled down for repeating itself. ``acf.testing.people``
acts as an operator (hand off, claim, reply, resume) and on the block list.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from acf.adapters.memory.drafts import InProcessDraftBus
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.database import Durability
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.domain.abuse import AbuseRules
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.handoff import HandoffPolicy, PeoplePolicies, PeoplePolicy
from acf.domain.ids import new_id
from acf.domain.messages import ButtonReply, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import TypingSignal
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.pipeline import Pipeline
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.firewall import Firewall
from acf.service.ingress import Accepted, Ingress
from acf.service.lease_keeper import LeaseSettings
from acf.service.mode_watch import ModeWatchSettings
from acf.service.runtime import Runtime, RuntimeSettings, SlotSettings
from acf.testing.channel import RecordingChannel
from acf.testing.clock import VirtualClock
from acf.testing.pipeline import Script, ScriptedPipeline, Tally
from acf.testing.tools import ToolBackend, registry

AGENT = "a1"
TENANT = "t1"
SETTLE_LIMIT = 20_000
HARNESS_MODE_WATCH = ModeWatchSettings(interval_ms=60_000)
HARNESS_PEOPLE = PeoplePolicy(HandoffPolicy(), AbuseRules(enabled=False))


def harness_people(tenant: str) -> PeoplePolicy:
    """The harness's default people policy: the product's handoff, the firewall off."""
    return HARNESS_PEOPLE


@dataclass(slots=True)
class HarnessOptions:
    script: Script = field(default_factory=Script)
    settings: AgentSettings = field(default_factory=AgentSettings)
    tenants: tuple[str, ...] = (TENANT,)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    pipeline: Pipeline | None = None
    """Your own pipeline instead of the scripted one (``script`` is then unused)."""
    other_agents: Mapping[str, Pipeline] = field(default_factory=dict)
    """More agents of every tenant beside ``AGENT``, by name, with the same settings and
    tools (``send(..., agent=name)`` writes to one)."""
    durability: Durability = Durability.FULL
    tools: tuple[ToolBackend, ...] = ()
    """Tools the agent may call, with scripted backends."""
    tool_registry: ToolRegistry | None = None
    """Your own tools (real handlers) instead of the scripted ones (``tools`` is then
    unused)."""
    people: PeoplePolicies = harness_people
    """Each tenant's handoff and firewall policy."""
    mode_watch: ModeWatchSettings | None = field(default_factory=lambda: HARNESS_MODE_WATCH)
    """How often the mode watch ends cool-downs, lifts expired blocks and checks handoff SLAs
    (``None``: never). Once a virtual minute by default, as often as the idle close: each
    check is a stop of ``advance``, and a scenario may skip a day."""


class Harness:
    def __init__(self, data_dir: Path, options: HarnessOptions | None = None) -> None:
        self.data_dir = data_dir
        self.options = options or HarnessOptions()
        self.clock = VirtualClock()
        self.channel = RecordingChannel(self.clock)
        self.drafts = InProcessDraftBus()
        """Where the runtime's turns publish their drafts (``ctx.draft``): subscribe to read."""
        self.tally = Tally()
        self.pipeline = ScriptedPipeline(self.options.script, self.tally, self, self.crash)
        chosen: Pipeline = self.options.pipeline or self.pipeline
        tools = self.options.tool_registry
        if tools is None:
            tools = registry(self.options.tools, self.clock, self.tally)
        bindings = {AGENT: AgentBinding(chosen, self.options.settings, tools)}
        if AGENT in self.options.other_agents:
            raise ValueError(f"other_agents names {AGENT!r}, the harness's own agent")
        for name, other in self.options.other_agents.items():
            bindings[name] = AgentBinding(other, self.options.settings, tools)
        self.agents = Agents({t: bindings for t in self.options.tenants})
        self.crashes = 0
        self._armed: list[Phase] = []
        self._injections: list[tuple[Phase, Callable[[], Awaitable[object]]]] = []
        self._restart: asyncio.Task[None] | None = None
        self._store: SqliteStore | None = None
        self._runtime: Runtime | None = None
        self._ingress: Ingress | None = None
        self._firewall: Firewall | None = None
        self._wakeups = InProcessWakeUps()
        self._others: list[Runtime] = []

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._open()
        await self.settle()

    async def _open(self) -> None:
        self._store = await open_sqlite_store(
            self.data_dir / "acf.db", self.clock, self.options.durability
        )
        self._wakeups = InProcessWakeUps()
        self._firewall = Firewall(
            self._store,
            self.clock,
            self.options.people,
            self._store.customer_rates,
            wake=self._wakeups.notify,
        )
        self._ingress = Ingress(
            self.agents, self._store.uow, self._wakeups, self.clock, self._firewall
        )
        self._runtime = self._new_runtime()
        self._others = []
        await self._runtime.start()

    def _new_runtime(self) -> Runtime:
        return Runtime(
            self.store,
            self.clock,
            self.agents,
            self._wakeups,
            self.channel,
            checkpoints=self,
            # Fixed slots: the loop's real lateness must not change what a scenario does.
            settings=RuntimeSettings(
                lease=self.options.lease,
                slots=SlotSettings(adaptive=False),
                mode_watch=self.options.mode_watch,
            ),
            drafts=self.drafts,
            people=self.options.people,
            policy_blocks=self.firewall,
        )

    async def add_runtime(self) -> Runtime:
        """Another runtime on the same store, woken by the same messages: the in-process
        picture of two workers competing for every session (only the lease stops them).
        A crash drops every runtime; one starts again."""
        other = self._new_runtime()
        self._others.append(other)
        await other.start()
        await self.settle()
        return other

    async def close(self) -> None:
        await self._wait_restart()
        for other in self._others:
            await other.stop()
        if self._runtime is not None:
            await self._runtime.stop()
        if self._store is not None:
            await self._store.close()

    async def __aenter__(self) -> "Harness":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def store(self) -> SqliteStore:
        assert self._store is not None, "the harness is not started"
        return self._store

    @property
    def firewall(self) -> Firewall:
        assert self._firewall is not None, "the harness is not started"
        return self._firewall

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the harness is not started"
        return self._runtime

    # -- faults ----------------------------------------------------------------------

    async def crash(self) -> None:
        """The process dies now: no further write lands; a new runtime starts on the file."""
        if self._restart is not None:
            return
        self.crashes += 1
        self.store.db.abandon()
        self._restart = asyncio.get_running_loop().create_task(self._restart_after_crash())

    async def _restart_after_crash(self) -> None:
        for other in self._others:
            await other.drop()
        await self.runtime.drop()
        await self.store.close()
        await self._open()

    def crash_at(self, phase: Phase | str) -> None:
        """Crash the next time the runtime reaches ``phase``."""
        self._armed.append(Phase(phase))

    def inject_at(self, phase: Phase | str, action: Callable[[], Awaitable[object]]) -> None:
        """Run ``action`` inside the runtime the next time it reaches ``phase`` (for example
        a message that lands between the pipeline's end and the commit)."""
        self._injections.append((Phase(phase), action))

    async def reached(self, phase: Phase, tenant: str, session_id: str) -> None:
        for injection in list(self._injections):
            if injection[0] is phase:
                self._injections.remove(injection)
                await injection[1]()
        if phase in self._armed:
            self._armed.remove(phase)
            await self.crash()
            await asyncio.Event().wait()  # the dropped runtime cancels us

    async def steal_lease(self, customer: str, channel: Channel = Channel.WEB) -> int:
        """Another holder takes the session's lease (as if ours had expired); its fence."""
        session = await self.store.sessions.find_open(TENANT, self.key(customer, channel))
        assert session is not None, f"no open session for {customer}"
        await self.store.db.write(
            TENANT,
            lambda conn: conn.execute(
                "UPDATE session_leases SET expires_at_ms = 0 WHERE tenant = ? AND session_id = ?",
                (TENANT, session.session_id),
            ),
        )
        lease = await self.store.lease.acquire(
            TENANT, session.session_id, "intruder", self.options.lease.ttl_ms
        )
        assert lease is not None
        await self.settle()
        return lease.fence

    # -- traffic ---------------------------------------------------------------------

    def key(
        self,
        customer: str,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
        agent: str = AGENT,
    ) -> SessionKey:
        return SessionKey(tenant, agent, customer, channel)

    async def send(
        self,
        customer: str,
        text: str | None = None,
        channel: Channel = Channel.WEB,
        provider_message_id: str | None = None,
        button: str | None = None,
        tenant: str = TENANT,
        settle: bool = True,
        agent: str = AGENT,
    ) -> Accepted:
        if settle:
            await self._wait_restart()
        assert self._ingress is not None
        message = NewMessage(
            self.key(customer, channel, tenant, agent),
            provider_message_id or new_id(),
            text=text,
            button=ButtonReply(button, button) if button else None,
        )
        accepted = await self._ingress.accept(message)
        if settle:
            await self.settle()
        return accepted

    async def typing(self, customer: str, active: bool, channel: Channel = Channel.WEB) -> None:
        await self._wait_restart()
        signal = TypingSignal(self.key(customer, channel), active, self.clock.now_ms())
        await self.runtime.typing(signal)
        await self.settle()

    # -- time --------------------------------------------------------------------------

    async def _wait_restart(self) -> None:
        while self._restart is not None:
            restart = self._restart
            await restart
            if self._restart is restart:
                self._restart = None

    def _activity(self) -> tuple[int, ...]:
        db = self.store.db
        tasks = sum(len(r.parts.tasks) for r in [self.runtime, *self._others])
        return (db.submitted, db.finished, len(self.channel.sends), tasks)

    async def settle(self) -> None:
        """Return once every task is blocked on the clock or on news (none runnable)."""
        quiet = rounds = 0
        while quiet < 3:
            rounds += 1
            if rounds > SETTLE_LIMIT:
                raise RuntimeError(
                    f"the runtime never went quiet in {SETTLE_LIMIT} rounds at one instant "
                    "of virtual time (a livelock)"
                )
            await self._wait_restart()
            before = self._activity()
            for _ in range(4):
                await asyncio.sleep(0)
            # The database thread answers from outside the loop: poll until it is idle.
            while not self.store.db.idle:  # noqa: ASYNC110
                await asyncio.sleep(0.0002)
            for _ in range(4):
                await asyncio.sleep(0)
            quiet = quiet + 1 if self._restart is None and self._activity() == before else 0

    async def advance(self, ms: int) -> None:
        """Move the clock ``ms`` forward, stopping at every due sleeper on the way."""
        target = self.clock.now_ms() + ms
        await self.settle()
        while True:
            due = self.clock.next_due_ms()
            if due is None or due > target:
                break
            self.clock.advance_to(due)
            await self.settle()
        self.clock.advance_to(target)
        await self.settle()

    @property
    def idle(self) -> bool:
        """Nothing left to do: only the wake-up listener is running."""
        runtimes = [self.runtime, *self._others]
        return self._restart is None and all(len(r.parts.tasks) <= 1 for r in runtimes)

    async def run_until_idle(self, limit_ms: int = 600_000) -> None:
        """Advance the clock until the runtime has nothing left to do."""
        end = self.clock.now_ms() + limit_ms
        await self.settle()
        while not self.idle:
            due = self.clock.next_due_ms()
            if due is None or due > end:
                raise TimeoutError(
                    f"still busy after {limit_ms} ms: {len(self.runtime.parts.tasks)} tasks"
                )
            self.clock.advance_to(due)
            await self.settle()

    def replies(self, customer: str | None = None) -> list[str]:
        return self.channel.replies_for(customer)
