"""The stage of ``acf demo``: one act's world and what is read back from it.

Each act runs the real embedded runtime on its own SQLite file in a temporary folder (the
scenario harness, on a virtual clock: no server, no real waiting), serving the demo agent
(the rules pipeline over the in-process commerce backend) on the web channel. What the
customer does is recorded as ``Step``s; the timeline is read back from the store's events.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acf.demo import demo_rules
from acf.demo.commerce import CommerceBackend, commerce_tools
from acf.demo.terminal_timeline import CRASHED, Describer, Row
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.pipelines.rules import RulesPipeline
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerEntry, LedgerQuery
from acf.ports.session_store import SessionRecord
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.ingress import Accepted
from acf.testing.harness import AGENT, TENANT, Harness, HarnessOptions

CHANNEL = Channel.WEB


@dataclass(frozen=True, slots=True)
class Step:
    """Something the customer (or their provider) did, at a virtual offset from the start."""

    at_ms: int
    customer: str
    action: str
    """says | taps | typing | resent"""
    text: str = ""
    provider_message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "at_ms": self.at_ms,
            "customer": self.customer,
            "action": self.action,
            "text": self.text,
        }
        if self.provider_message_id is not None:
            row["provider_message_id"] = self.provider_message_id
        return row


@dataclass(frozen=True, slots=True)
class Crash:
    phase: Phase | None
    at_ms: int


class DemoHarness(Harness):
    """The harness, remembering where and when the process died."""

    def __init__(self, data_dir: Path, options: HarnessOptions) -> None:
        super().__init__(data_dir, options)
        self.last_phase: Phase | None = None
        self.crash_log: list[Crash] = []

    async def reached(self, phase: Phase, tenant: str, session_id: str) -> None:
        self.last_phase = phase
        await super().reached(phase, tenant, session_id)

    async def crash(self) -> None:
        before = self.crashes
        await super().crash()
        if self.crashes > before:
            self.crash_log.append(Crash(self.last_phase, self.clock.now_ms()))


@dataclass(slots=True)
class Stage:
    """One act: a fresh store and runtime, the demo agent, and what the customer did."""

    data_dir: Path
    backend: CommerceBackend = field(default_factory=CommerceBackend)
    settings: AgentSettings = field(default_factory=AgentSettings)
    steps: list[Step] = field(default_factory=list)
    start_ms: int = 0
    harness: DemoHarness = field(init=False)

    def __post_init__(self) -> None:
        pipeline = RulesPipeline(demo_rules())
        self.harness = DemoHarness(self.data_dir, HarnessOptions(pipeline=pipeline))
        tools = ToolRegistry(commerce_tools(self.backend))
        self.harness.agents = Agents(
            {TENANT: {AGENT: AgentBinding(pipeline, self.settings, tools)}}
        )

    async def open(self) -> None:
        await self.harness.start()
        self.start_ms = self.harness.clock.now_ms()

    async def close(self) -> None:
        await self.harness.close()

    def now(self) -> int:
        """Milliseconds since the act began (virtual)."""
        return self.harness.clock.now_ms() - self.start_ms

    async def at(self, offset_ms: int) -> int:
        """Move the virtual clock to ``offset_ms`` after the start (never backwards)."""
        if offset_ms > self.now():
            await self.harness.advance(offset_ms - self.now())
        return self.now()

    # -- what the customer does -----------------------------------------------------------

    async def say(
        self, offset_ms: int, customer: str, text: str, provider_message_id: str | None = None
    ) -> Accepted:
        at = await self.at(offset_ms)
        accepted = await self.harness.send(
            customer, text, CHANNEL, provider_message_id=provider_message_id
        )
        action = "resent" if accepted.duplicate else "says"
        self.steps.append(Step(at, customer, action, text, provider_message_id))
        return accepted

    async def typing(self, offset_ms: int, customer: str, active: bool = True) -> None:
        at = await self.at(offset_ms)
        await self.harness.typing(customer, active, CHANNEL)
        self.steps.append(Step(at, customer, "typing", "starts typing" if active else "stops"))

    async def tap(self, offset_ms: int, customer: str, title: str) -> None:
        """Press the button titled ``title`` on the last reply that had buttons."""
        buttons = {}
        for event in await self.events(customer):
            if event.kind is EventKind.RESPONSE_DELIVERED and event.data.get("buttons"):
                buttons = {str(b["title"]): str(b["id"]) for b in event.data["buttons"]}
        if title not in buttons:
            raise LookupError(f"no reply to {customer} offered a {title!r} button")
        at = await self.at(offset_ms)
        await self.harness.send(customer, channel=CHANNEL, button=buttons[title])
        self.steps.append(Step(at, customer, "taps", title))

    async def idle(self) -> None:
        await self.harness.run_until_idle()

    # -- what happened ----------------------------------------------------------------------

    async def session(self, customer: str) -> SessionRecord:
        found = await self.harness.store.sessions.find_open(
            TENANT, self.harness.key(customer, CHANNEL)
        )
        if found is None:
            raise LookupError(f"no session for {customer}")
        return found

    async def events(self, customer: str) -> list[FabricEvent]:
        session = await self.session(customer)
        query = EventQuery(session_id=session.session_id, limit=10_000)
        return await self.harness.store.events.query(TENANT, query)

    async def count(self, customer: str, kind: EventKind) -> int:
        return sum(e.kind is kind for e in await self.events(customer))

    async def ledger(self, customer: str, tool: str | None = None) -> list[LedgerEntry]:
        session = await self.session(customer)
        query = LedgerQuery(session_id=session.session_id, tool=tool)
        return await self.harness.store.ledger.query(TENANT, query)

    def replies(self, customer: str) -> list[str]:
        """What the customer received, each outbox row once (the recording channel)."""
        return self.harness.replies(customer)

    async def undelivered(self, customer: str) -> int:
        session = await self.session(customer)
        return len(await self.harness.store.outbox.undelivered(TENANT, session.session_id))

    async def timeline(self, customers: list[str]) -> list[Row]:
        """The customers' events in order (and the crashes), as readable rows."""
        rows: list[tuple[int, int, Row]] = []
        for customer in customers:
            session = await self.session(customer)
            store = self.harness.store
            messages = await store.messages.read_range(
                TENANT, session.session_id, 0, session.last_seq
            )
            events = await self.events(customer)
            describe = Describer.of(self.start_ms, messages, await self.ledger(customer), events)
            for event in events:
                row = Row(event.at_ms - self.start_ms, event.kind.value, describe(event))
                rows.append((event.at_ms, event.event_id or 0, row))
        for crash in self.harness.crash_log:
            phase = crash.phase.value if crash.phase else "an unknown phase"
            detail = f"the process died at {phase}; a new runtime started on the same file"
            rows.append((crash.at_ms, 1 << 62, Row(crash.at_ms - self.start_ms, CRASHED, detail)))
        return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]
