"""The LangGraph peers: one echo node, one thread per session, over LangGraph's SQLite or
PostgreSQL checkpointer. ``receive`` acknowledges at once (in memory) and runs the turn in
the background.
"""

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from acf.bench.marks import Marks

if TYPE_CHECKING:
    from langgraph.graph import StateGraph

MISSING = "the LangGraph peer needs: pip install 'acf[bench]' (make install has it)"


class State(TypedDict):
    text: str
    reply: str


def echo_graph(marks: Marks) -> "StateGraph[State]":
    """START -> echo -> END, not compiled; the node notes in ``marks`` when it ran."""
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        raise RuntimeError(MISSING) from None

    async def echo(state: State) -> dict[str, str]:
        marks.started[state["text"]] = time.perf_counter()
        reply = state["text"]
        marks.ended[state["text"]] = time.perf_counter()
        return {"reply": reply}

    graph = StateGraph(State)
    graph.add_node("echo", echo)
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    return graph


class LangGraphPeer:
    """What both peers share: the marks, and a turn per message on the compiled graph."""

    def __init__(self) -> None:
        self.marks = Marks()
        self._app: Any = None

    async def receive(self, session: str, text: str) -> None:
        self.marks.acked[text] = time.perf_counter()
        asyncio.get_running_loop().create_task(self._turn(session, text))

    async def _turn(self, session: str, text: str) -> None:
        out = await self._app.ainvoke(
            {"text": text, "reply": ""}, {"configurable": {"thread_id": session}}
        )
        self.marks.deliver(out["reply"])


class LangGraphSubject(LangGraphPeer):
    """LangGraph with its SQLite checkpointer: one echo node, one thread per session."""

    name = "LangGraph (AsyncSqliteSaver)"

    def __init__(self) -> None:
        super().__init__()
        self._saver_cm: Any = None

    async def start(self, folder: Path) -> None:
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        except ImportError:
            raise RuntimeError(MISSING) from None
        graph = echo_graph(self.marks)
        self._saver_cm = AsyncSqliteSaver.from_conn_string(str(folder / "langgraph.db"))
        saver = await self._saver_cm.__aenter__()
        self._app = graph.compile(checkpointer=saver)

    async def stop(self) -> None:
        if self._saver_cm is not None:
            await self._saver_cm.__aexit__(None, None, None)


class LangGraphPostgresSubject(LangGraphPeer):
    """LangGraph with ``AsyncPostgresSaver`` over a connection pool: one echo node, one thread
    per session (the checkpointer's documented production set-up)."""

    name = "LangGraph (AsyncPostgresSaver)"

    def __init__(self, dsn: str, pool_size: int) -> None:
        super().__init__()
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: Any = None

    async def start(self, folder: Path) -> None:
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool
        except ImportError:
            raise RuntimeError(MISSING) from None
        graph = echo_graph(self.marks)
        self._pool = AsyncConnectionPool(
            self._dsn,
            min_size=self._pool_size,
            max_size=self._pool_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await self._pool.open(wait=True)
        saver = AsyncPostgresSaver(self._pool)
        await saver.setup()
        self._app = graph.compile(checkpointer=saver)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
