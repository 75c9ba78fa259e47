"""Event store (both dialects).

A query's kinds are written into its SQL as literals (``kind IN ('a','b')``, sorted), not
bound: a partial index on some kinds (``ix_events_typing``, the customer's typing signals)
is used only when the query's WHERE visibly implies the index's predicate, and neither
SQLite nor a generic PostgreSQL plan can see that through parameters. Kinds are
``EventKind`` values, a closed set of fixed names, checked again before they are written.
"""

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from acf.adapters.sql.database import Database, Dialect, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import TenantId
from acf.ports.event_store import AppendEvent, EventQuery

_COLUMNS = (
    "event_id, tenant, session_id, kind, at_ms, trace_id, turn_id, group_id, "
    "agent_version, config_version, data"
)


_KIND_NAME = re.compile(r"[a-z][a-z0-9_.]*")


def kinds_predicate(kinds: Sequence[EventKind]) -> str:
    """``kind IN ('a', 'b')`` with ``kinds``' names as literals, sorted: the form the
    events' partial indexes are declared with (``schema``), so a query of the same kinds
    matches one exactly."""
    names = sorted({EventKind(k).value for k in kinds})
    for name in names:
        if not _KIND_NAME.fullmatch(name):  # never: EventKind's names are plain
            raise ValueError(f"not an event kind name: {name!r}")
    return "kind IN ({})".format(", ".join(f"'{n}'" for n in names))


_WRITTEN: ContextVar[list[FabricEvent] | None] = ContextVar("acf_written_events", default=None)


def insert_event(conn: SqlConnection, event: FabricEvent) -> int:
    """An op's own event (its executor writes it beside its rows): kept for the unit's
    observers (``written_events``) as ``AppendEvent`` ops are."""
    event_id = insert_events(conn, [event])[0]
    written = _WRITTEN.get()
    if written is not None:
        written.append(replace(event, event_id=event_id))
    return event_id


@contextmanager
def written_events() -> Iterator[list[FabricEvent]]:
    """Collect the events executors write (``insert_event``) while it is open: a unit's run,
    on the thread that runs it."""
    written: list[FabricEvent] = []
    token = _WRITTEN.set(written)
    try:
        yield written
    finally:
        _WRITTEN.reset(token)


def insert_events(conn: SqlConnection, events: Sequence[FabricEvent]) -> list[int]:
    """``events`` in one statement; their ids, in the order of ``events``."""
    row = f"({conn.dialect.event_id},?,?,?,?,?,?,?,?,?,?)"
    values: list[Any] = []
    for event in events:
        c = event.correlation
        values += (
            c.tenant,
            c.session_id,
            event.kind.value,
            event.at_ms,
            c.trace_id,
            c.turn_id,
            c.group_id,
            c.agent_version,
            c.config_version,
            dumps(dict(event.data)),
        )
    cur = conn.execute(
        "INSERT INTO events (event_id, tenant, session_id, kind, at_ms, trace_id, turn_id, "
        f"group_id, agent_version, config_version, data) VALUES {','.join([row] * len(events))} "
        "RETURNING event_id",
        values,
    )
    # Rows are given their ids in the order of VALUES (a transaction's rank on PostgreSQL,
    # the rowid on SQLite): ascending ids are the events' order, whatever order RETURNING
    # lists them in.
    return sorted(int(r[0]) for r in cur.fetchall())


@executes(AppendEvent)
def _append(conn: SqlConnection, tenant: str, op: AppendEvent) -> int:
    require_tenant(tenant, op.event.tenant)
    return insert_events(conn, [op.event])[0]  # an AppendEvent's observers see the op


def append_events(conn: SqlConnection, tenant: str, ops: Sequence[AppendEvent]) -> list[int]:
    """Several ``AppendEvent`` of one unit in one statement."""
    for op in ops:
        require_tenant(tenant, op.event.tenant)
    return insert_events(conn, [op.event for op in ops])


def _event(row: tuple[Any, ...]) -> FabricEvent:
    return FabricEvent(
        event_id=row[0],
        kind=EventKind(row[3]),
        at_ms=row[4],
        correlation=Correlation(
            tenant=row[1],
            session_id=row[2],
            trace_id=row[5],
            turn_id=row[6],
            group_id=row[7],
            agent_version=row[8],
            config_version=row[9],
        ),
        data=loads(row[10]),
    )


def select_events(dialect: Dialect, tenant: str, query: EventQuery) -> tuple[str, list[Any]]:
    """The statement (and its parameters) that reads ``query``'s events of ``tenant``."""
    sql = [f"SELECT {_COLUMNS} FROM events WHERE tenant = ? AND event_id > ?"]
    if query.in_commit_order and dialect.visible_events:
        sql.append(dialect.visible_events)
    args: list[Any] = [tenant, query.after_id]
    if query.session_id is not None:
        sql.append("AND session_id = ?")
        args.append(query.session_id)
    if query.kinds:
        sql.append(f"AND {kinds_predicate(query.kinds)}")
    if query.from_ms is not None:
        sql.append("AND at_ms >= ?")
        args.append(query.from_ms)
    if query.to_ms is not None:
        sql.append("AND at_ms < ?")
        args.append(query.to_ms)
    sql.append(f"ORDER BY event_id{' DESC' if query.newest_first else ''} LIMIT ?")
    args.append(query.limit)
    return " ".join(sql), args


class SqlEventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def query(self, tenant: TenantId, query: EventQuery) -> list[FabricEvent]:
        statement, args = select_events(self._db.dialect, tenant, query)

        def run(conn: SqlConnection) -> list[FabricEvent]:
            return [_event(r) for r in conn.execute(statement, args)]

        return await self._db.read(tenant, run)

    async def last_id(self, tenant: TenantId) -> int:
        sql = "SELECT MAX(event_id) FROM events WHERE tenant = ?"
        if self._db.dialect.visible_events:
            sql += f" {self._db.dialect.visible_events}"

        def run(conn: SqlConnection) -> int:
            row = conn.execute(sql, [tenant]).fetchone()
            return 0 if row is None or row[0] is None else int(row[0])

        return await self._db.read(tenant, run)
