"""What the benchmark measures: acf, a naive baseline and LangGraph, each running the same
one-step echo turn per session and reporting when the turn's logic started and ended.

Each subject is driven the same way: ``receive(session, text)`` returns once the message
is acknowledged (for acf: durable; for the others: accepted in memory), and ``delivered``
reports, per text, when the reply reached the channel.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.database import Durability
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.messages import NewMessage
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import OutboundMessage, SendReceipt
from acf.ports.pipeline import TurnContext
from acf.service.agents import AgentBinding, Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime


@dataclass(slots=True)
class Marks:
    """perf_counter() readings per message text."""

    acked: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def deliver(self, text: str) -> None:
        self.delivered[text] = time.perf_counter()
        waiter = self.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()

    def expect(self, text: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters[text] = event
        return event


class Subject(Protocol):
    name: str
    marks: Marks

    async def start(self, folder: Path) -> None: ...

    async def receive(self, session: str, text: str) -> None: ...

    async def stop(self) -> None: ...


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

    def __init__(self, durability: Durability = Durability.FULL) -> None:
        self.name = f"acf (SQLite, synchronous={durability.value.upper()})"
        self.marks = Marks()
        self._durability = durability
        self._store: SqliteStore | None = None
        self._runtime: Runtime | None = None
        self._ingress: Ingress | None = None

    async def start(self, folder: Path) -> None:
        clock = SystemClock()
        self._store = await open_sqlite_store(folder / "acf.db", clock, self._durability)
        settings = AgentSettings(
            channel_policies={Channel.WEB: ChannelPolicy(AccumulationMode.OFF)}
        )
        agents = Agents({"bench": {"echo": AgentBinding(EchoPipeline(self.marks), settings)}})
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


class LangGraphSubject:
    """LangGraph with its SQLite checkpointer: one echo node, one thread per session."""

    name = "LangGraph (AsyncSqliteSaver)"

    def __init__(self) -> None:
        self.marks = Marks()
        self._app: Any = None
        self._saver_cm: Any = None

    async def start(self, folder: Path) -> None:
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
            from langgraph.graph import END, START, StateGraph
        except ImportError:
            raise RuntimeError(
                "the LangGraph peer needs: pip install 'acf[bench]' (make install has it)"
            ) from None
        from typing import TypedDict

        class State(TypedDict):
            text: str
            reply: str

        marks = self.marks

        async def echo(state: State) -> dict[str, str]:
            marks.started[state["text"]] = time.perf_counter()
            reply = state["text"]
            marks.ended[state["text"]] = time.perf_counter()
            return {"reply": reply}

        graph = StateGraph(State)
        graph.add_node("echo", echo)
        graph.add_edge(START, "echo")
        graph.add_edge("echo", END)
        self._saver_cm = AsyncSqliteSaver.from_conn_string(str(folder / "langgraph.db"))
        saver = await self._saver_cm.__aenter__()
        self._app = graph.compile(checkpointer=saver)

    async def receive(self, session: str, text: str) -> None:
        self.marks.acked[text] = time.perf_counter()
        asyncio.get_running_loop().create_task(self._turn(session, text))

    async def _turn(self, session: str, text: str) -> None:
        out = await self._app.ainvoke(
            {"text": text, "reply": ""}, {"configurable": {"thread_id": session}}
        )
        self.marks.deliver(out["reply"])

    async def stop(self) -> None:
        if self._saver_cm is not None:
            await self._saver_cm.__aexit__(None, None, None)


SubjectFactory = Callable[[], Subject]
Runner = Callable[[Subject], Awaitable[None]]
