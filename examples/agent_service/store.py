"""The reference service's own state: one SQLite file (stdlib ``sqlite3``, WAL).

Every call runs on one worker thread that owns the connection, so writes are serialised and
the event loop never blocks on the file. Each method that changes several things (an event
and the execution's last id, a tool's end and the model's transcript, the final event and
the agent session's status) does so in one transaction: after a crash the file holds all of
it or none of it, which is what lets an execution resume without running a tool twice.

The tables are in ``schema.sql``: agent sessions (status, pending ask), their transcripts
(the model's messages, each tagged with the execution that added it), executions by
``Idempotency-Key``, their events by id, the tool calls whose ``TOOL_START`` was sent, and
the tickets ``open_ticket`` writes (one per execution key and tool call).
"""

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acf.pipelines.agent_service.protocol import (
    AgentEvent,
    AgentSessionState,
    ErrorData,
    event_data,
    parse_event,
)

Message = dict[str, Any]
"""One chat-completions message, as the OpenAI API takes it."""

_T = TypeVar("_T")

SCHEMA = Path(__file__).with_name("schema.sql")


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    profile: str
    conversation_id: str
    tenant: str
    status: AgentSessionState
    pending_ask_id: str | None
    pending_question: str | None


@dataclass(frozen=True, slots=True)
class NewSession:
    """An agent session ``begin`` opens with the execution."""

    profile: str
    conversation_id: str
    tenant: str


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    key: str
    profile: str
    agent_session_id: str
    ended: bool
    """It sent its final event (COMPLETE, ASK_USER or a non-retryable ERROR) or was
    superseded: a request with its key only replays it."""
    last_event_id: int


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    execution_key: str
    call_id: str
    agent_session_id: str
    summary: str


class Store:
    """The service's SQLite file; ``open`` before use, ``close`` after."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._call(self._connect)

    async def close(self) -> None:
        await self._call(self._disconnect)
        self._executor.shutdown(wait=True)

    async def session(self, session_id: str) -> SessionRow | None:
        rows = await self._rows(
            "SELECT id, profile, conversation_id, tenant, status, pending_ask_id,"
            " pending_question FROM agent_sessions WHERE id = ?",
            (session_id,),
        )
        return next(
            (SessionRow(r[0], r[1], r[2], r[3], AgentSessionState(r[4]), r[5], r[6]) for r in rows),
            None,
        )

    async def execution(self, key: str) -> ExecutionRow | None:
        rows = await self._rows(
            "SELECT key, profile, agent_session_id, ended, last_event_id"
            " FROM executions WHERE key = ?",
            (key,),
        )
        return next((ExecutionRow(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows), None)

    async def begin(
        self, key: str, profile: str, session: SessionRow | NewSession, messages: list[Message]
    ) -> tuple[str, list[str]]:
        """Record execution ``key`` on ``session`` (opened here when new) and append
        ``messages`` to its transcript; the session becomes ACTIVE with no pending ask. The
        session's other open executions end as superseded. Returns the session's id and
        the keys it superseded."""

        def write(db: sqlite3.Connection) -> tuple[str, list[str]]:
            now = time.time()
            if isinstance(session, NewSession):
                session_id = f"as-{uuid.uuid4().hex[:20]}"
                new = session.profile, session.conversation_id, session.tenant
                db.execute(
                    "INSERT INTO agent_sessions VALUES (?, ?, ?, ?, 'ACTIVE', NULL, NULL, ?, ?)",
                    (session_id, *new, now, now),
                )
            else:
                session_id = session.id
            open_keys = [
                r[0]
                for r in db.execute(
                    "SELECT key FROM executions WHERE agent_session_id = ? AND ended = 0",
                    (session_id,),
                )
            ]
            for old in open_keys:
                self._supersede(db, old, session_id)
            db.execute(
                "INSERT INTO executions (key, profile, agent_session_id, created_at)"
                " VALUES (?, ?, ?, ?)",
                (key, profile, session_id, now),
            )
            for message in messages:
                self._append(db, session_id, key, message)
            self._set_status(db, session_id, AgentSessionState.ACTIVE, None)
            return session_id, open_keys

        return await self._write(write)

    async def supersede(self, key: str) -> tuple[int, ErrorData] | None:
        """End execution ``key`` with ``ERROR superseded`` unless it has ended; that event."""

        def write(db: sqlite3.Connection) -> tuple[int, ErrorData] | None:
            row = db.execute(
                "SELECT agent_session_id FROM executions WHERE key = ? AND ended = 0", (key,)
            ).fetchone()
            return None if row is None else self._supersede(db, key, row[0])

        return await self._write(write)

    async def add_event(self, key: str, event_id: int, event: AgentEvent) -> None:
        await self._write(lambda db: self._event(db, key, event_id, event))

    async def skip_event_id(self, key: str, event_id: int) -> None:
        """Count ``event_id`` as used without storing an event (a retryable ERROR is sent
        live only: a request with the key runs the execution on instead of replaying it)."""
        sql = "UPDATE executions SET last_event_id = ? WHERE key = ?"
        await self._write(lambda db: db.execute(sql, (event_id, key)))

    async def add_message(self, session_id: str, key: str, message: Message) -> None:
        await self._write(lambda db: self._append(db, session_id, key, message))

    async def start_tool(
        self, key: str, call_id: str, tool: str, event_id: int, event: AgentEvent
    ) -> None:
        """Store a tool call's ``TOOL_START`` and remember it was sent."""

        def write(db: sqlite3.Connection) -> None:
            self._event(db, key, event_id, event)
            db.execute("INSERT INTO tool_runs VALUES (?, ?, ?, ?)", (key, call_id, tool, event_id))

        await self._write(write)

    async def finish_tool(
        self, session_id: str, key: str, event_id: int, event: AgentEvent, result: Message
    ) -> None:
        """Store a tool call's ``TOOL_END`` and its result message, together."""

        def write(db: sqlite3.Connection) -> None:
            self._event(db, key, event_id, event)
            self._append(db, session_id, key, result)

        await self._write(write)

    async def tool_start_id(self, key: str, call_id: str) -> int | None:
        """The id of the ``TOOL_START`` sent for this call, if one was."""
        rows = await self._rows(
            "SELECT start_event_id FROM tool_runs WHERE execution_key = ? AND call_id = ?",
            (key, call_id),
        )
        return next((int(r[0]) for r in rows), None)

    async def end(
        self,
        key: str,
        event_id: int,
        event: AgentEvent,
        status: AgentSessionState,
        pending: tuple[str, str] | None = None,
    ) -> None:
        """Store the final event, end the execution and set its agent session's status
        (``pending``: the ask id and question it now waits for)."""

        def write(db: sqlite3.Connection) -> None:
            self._event(db, key, event_id, event)
            db.execute("UPDATE executions SET ended = 1 WHERE key = ?", (key,))
            self._set_status(db, event.agent_session_id, status, pending)

        await self._write(write)

    async def events(self, key: str, after: int = 0) -> list[tuple[int, AgentEvent]]:
        rows = await self._rows(
            "SELECT id, name, data FROM events WHERE execution_key = ? AND id > ? ORDER BY id",
            (key, after),
        )
        return [(r[0], parse_event(r[1], r[2])) for r in rows]

    async def transcript(self, session_id: str) -> list[Message]:
        rows = await self._rows(
            "SELECT message FROM transcript WHERE agent_session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [json.loads(r[0]) for r in rows]

    async def answer_so_far(self, key: str) -> str:
        """The text of the assistant messages execution ``key`` added, in order."""
        rows = await self._rows(
            "SELECT message FROM transcript WHERE execution_key = ? ORDER BY seq", (key,)
        )
        messages = [json.loads(r[0]) for r in rows]
        return "".join(m.get("content") or "" for m in messages if m["role"] == "assistant")

    async def open_ticket(self, key: str, call_id: str, session_id: str, summary: str) -> int:
        """The ticket of this execution's tool call, written on its first call only."""

        def write(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT OR IGNORE INTO tickets"
                " (execution_key, call_id, agent_session_id, summary, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, call_id, session_id, summary, time.time()),
            )
            sql = "SELECT id FROM tickets WHERE execution_key = ? AND call_id = ?"
            return int(db.execute(sql, (key, call_id)).fetchone()[0])

        return await self._write(write)

    async def tickets(self) -> list[Ticket]:
        rows = await self._rows(
            "SELECT id, execution_key, call_id, agent_session_id, summary FROM tickets ORDER BY id",
            (),
        )
        return [Ticket(*r) for r in rows]

    # On the store's thread only.

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions are explicit
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(SCHEMA.read_text(encoding="utf-8"))
        self._db = db

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _event(self, db: sqlite3.Connection, key: str, event_id: int, event: AgentEvent) -> None:
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            (key, event_id, event.type.value, event_data(event)),
        )
        db.execute("UPDATE executions SET last_event_id = ? WHERE key = ?", (event_id, key))

    def _append(self, db: sqlite3.Connection, session_id: str, key: str, message: Message) -> None:
        db.execute(
            "INSERT INTO transcript VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM transcript"
            " WHERE agent_session_id = ?), ?, ?)",
            (session_id, session_id, key, json.dumps(message)),
        )

    def _set_status(
        self,
        db: sqlite3.Connection,
        session_id: str,
        status: AgentSessionState,
        pending: tuple[str, str] | None,
    ) -> None:
        ask_id, question = pending or (None, None)
        db.execute(
            "UPDATE agent_sessions SET status = ?, pending_ask_id = ?, pending_question = ?,"
            " updated_at = ? WHERE id = ?",
            (status.value, ask_id, question, time.time(), session_id),
        )

    def _supersede(
        self, db: sqlite3.Connection, key: str, session_id: str
    ) -> tuple[int, ErrorData]:
        sql = "SELECT last_event_id FROM executions WHERE key = ?"
        event_id = int(db.execute(sql, (key,)).fetchone()[0]) + 1
        event = ErrorData(
            agent_session_id=session_id,
            code="superseded",
            message="a newer execution replaced this one",
        )
        self._event(db, key, event_id, event)
        db.execute("UPDATE executions SET ended = 1 WHERE key = ?", (key,))
        return event_id, event

    async def _write(self, change: Callable[[sqlite3.Connection], _T]) -> _T:
        """``change`` in one transaction (committed, or rolled back if it raises)."""

        def run() -> _T:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                done = change(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return done

        return await self._call(run)

    async def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return await self._call(lambda: self._conn.execute(sql, params).fetchall())

    async def _call(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
