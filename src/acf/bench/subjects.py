"""What the benchmark measures: acf, a naive baseline and LangGraph, each running the same
one-step echo turn per session and reporting when the turn's logic started and ended.

Each subject is driven the same way: ``receive(session, text)`` returns once the message
is acknowledged (for acf: durable; for the others: accepted in memory), and ``delivered``
reports, per text, when the reply reached the channel.

acf and the baseline are here; the LangGraph peers are in :mod:`acf.bench.langgraph_peers`
and :class:`Marks` and :class:`Subject` in :mod:`acf.bench.marks`, all importable from here.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sqlite.database import Durability
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.bench.langgraph_peers import LangGraphSubject
from acf.bench.marks import Marks, Subject
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.messages import NewMessage
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.ports.agent_binding import AgentBinding
from acf.ports.channel_sender import OutboundMessage, SendReceipt
from acf.ports.pipeline import Pipeline, TurnContext
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime

__all__ = [
    "AcfSubject",
    "EchoPipeline",
    "LangGraphSubject",
    "MarkingChannel",
    "Marks",
    "NaiveSubject",
    "Runner",
    "Subject",
    "SubjectFactory",
]


class EchoPipeline:
    """The no-op turn: reply with the text, noting when the logic ran."""

    name = "echo"
    version = "1"

    def __init__(self, marks: Marks) -> None:
        self._marks = marks

    async def run(self, ctx: TurnContext) -> PipelineResult:
        text = ctx.messages[-1].text or ""
        self._marks.started[text] = time.perf_counter()
        result = PipelineResult.reply(text)
        self._marks.ended[text] = time.perf_counter()
        return result


class MarkingChannel:
    def __init__(self, marks: Marks) -> None:
        self._marks = marks
        self._count = 0

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self._marks.deliver(str(message.payload["text"]))
        self._count += 1
        return SendReceipt(f"bench-{self._count}")


class AcfSubject:
    """The embedded runtime: SQLite (``synchronous=FULL`` unless told otherwise), window 0."""

    def __init__(
        self,
        durability: Durability = Durability.FULL,
        pipeline: Callable[[Marks], Pipeline] = EchoPipeline,
    ) -> None:
        self.name = f"acf (SQLite, synchronous={durability.value.upper()})"
        self.marks = Marks()
        self._durability = durability
        self._pipeline = pipeline
        self._store: SqliteStore | None = None
        self._runtime: Runtime | None = None
        self._ingress: Ingress | None = None

    async def start(self, folder: Path) -> None:
        clock = SystemClock()
        self._store = await open_sqlite_store(folder / "acf.db", clock, self._durability)
        settings = AgentSettings(
            channel_policies={Channel.WEB: ChannelPolicy(AccumulationMode.OFF)}
        )
        binding = AgentBinding(self._pipeline(self.marks), settings)
        agents = Agents({"bench": {"echo": binding}})
        wakeups = InProcessWakeUps()
        self._ingress = Ingress(agents, self._store.uow, wakeups, clock)
        self._runtime = Runtime(self._store, clock, agents, wakeups, MarkingChannel(self.marks))
        await self._runtime.start()

    async def receive(self, session: str, text: str) -> None:
        assert self._ingress is not None
        key = SessionKey("bench", "echo", session, Channel.WEB)
        await self._ingress.accept(NewMessage(key, text, text=text))
        self.marks.acked[text] = time.perf_counter()

    @property
    def busy(self) -> int:
        return 0 if self._runtime is None else self._runtime.busy

    async def outcomes(self) -> dict[str, int]:
        """FAILED turns and ``lease.lost`` events in the database so far."""
        assert self._store is not None

        def count(conn: SqlConnection) -> dict[str, int]:
            failed = conn.execute("SELECT COUNT(*) FROM turns WHERE phase = 'failed'")
            lost = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'lease.lost'")
            return {"failed_turns": failed.fetchone()[0], "lease_lost": lost.fetchone()[0]}

        return await self._store.db.read(None, count)

    async def stop(self) -> None:
        if self._runtime is not None:
            await self._runtime.stop()
        if self._store is not None:
            await self._store.close()


class NaiveSubject:
    """The same logic called directly: no durability, no ordering, no guarantees."""

    name = "naive (direct call)"

    def __init__(self) -> None:
        self.marks = Marks()

    async def start(self, folder: Path) -> None:
        return None

    async def receive(self, session: str, text: str) -> None:
        self.marks.acked[text] = time.perf_counter()
        asyncio.get_running_loop().create_task(self._turn(text))

    async def _turn(self, text: str) -> None:
        self.marks.started[text] = time.perf_counter()
        reply = f"{text}"
        self.marks.ended[text] = time.perf_counter()
        self.marks.deliver(reply)

    async def stop(self) -> None:
        return None


SubjectFactory = Callable[[], Subject]
Runner = Callable[[Subject], Awaitable[None]]
