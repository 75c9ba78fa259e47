"""SQLite tool ledger."""

import sqlite3
from typing import Any

from acf.adapters.sqlite.database import SqliteDatabase
from acf.adapters.sqlite.registry import dumps, executes, loads, require_tenant
from acf.domain.errors import Conflict
from acf.domain.ids import TenantId
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.ports.ledger import (
    FINISH_MOVES,
    BeginExecution,
    Begun,
    FinishExecution,
    LedgerEntry,
    LedgerQuery,
)

_COLUMNS = (
    "tenant, execution_id, idempotency_key, tool, policy, status, session_id, group_id, "
    "turn_id, customer, args, started_at_ms, expires_at_ms, finished_at_ms, result, error"
)
# The row that holds a key at an instant (params: tenant, key, now). A definite failure
# (or an undone action) holds nothing: running again is safe. A started or in-doubt row
# holds its key past any TTL: its outcome is unknown until reconciled.
_HOLDER = (
    "tenant = ? AND idempotency_key = ? AND holds_key = 1 "
    "AND status NOT IN ('failed', 'compensated') "
    "AND (expires_at_ms IS NULL OR expires_at_ms > ? OR status IN ('started', 'in_doubt'))"
)


def _entry(r: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        tenant=r[0],
        execution_id=r[1],
        idempotency_key=r[2],
        tool=r[3],
        policy=SideEffectPolicy(r[4]),
        status=LedgerStatus(r[5]),
        session_id=r[6],
        group_id=r[7],
        turn_id=r[8],
        customer=r[9],
        args=loads(r[10]),
        started_at_ms=r[11],
        expires_at_ms=r[12],
        finished_at_ms=r[13],
        result=loads(r[14]),
        error=r[15],
    )


def _holder(conn: sqlite3.Connection, tenant: str, key: str, now: int) -> LedgerEntry | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE {_HOLDER}", (tenant, key, now))
    found = row.fetchone()
    return None if found is None else _entry(found)


@executes(BeginExecution)
def _begin(conn: sqlite3.Connection, tenant: str, op: BeginExecution) -> Begun:
    e = op.entry
    require_tenant(tenant, e.tenant)
    earlier = _holder(conn, tenant, e.idempotency_key, e.started_at_ms)
    if earlier is not None:
        return Begun(earlier, started=False)
    # An expired or failed holder gives the key up; then this row takes it.
    conn.execute(
        "UPDATE ledger SET holds_key = NULL WHERE tenant = ? AND idempotency_key = ? "
        "AND holds_key = 1",
        (tenant, e.idempotency_key),
    )
    conn.execute(
        f"INSERT INTO ledger ({_COLUMNS}, holds_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
        (
            tenant,
            e.execution_id,
            e.idempotency_key,
            e.tool,
            e.policy.value,
            LedgerStatus.STARTED.value,
            e.session_id,
            e.group_id,
            e.turn_id,
            e.customer,
            dumps(dict(e.args)),
            e.started_at_ms,
            e.expires_at_ms,
            None,
            None,
            None,
        ),
    )
    return Begun(e, started=True)


@executes(FinishExecution)
def _finish(conn: sqlite3.Connection, tenant: str, op: FinishExecution) -> None:
    row = conn.execute(
        "SELECT status FROM ledger WHERE tenant = ? AND execution_id = ?",
        (tenant, op.execution_id),
    ).fetchone()
    if row is None:
        raise Conflict(f"no ledger entry {op.execution_id}")
    current = LedgerStatus(row[0])
    if op.status not in FINISH_MOVES.get(current, frozenset()):
        raise Conflict(f"ledger entry is {current.value}: cannot become {op.status.value}")
    conn.execute(
        "UPDATE ledger SET status = ?, finished_at_ms = ?, result = ?, error = ? "
        "WHERE tenant = ? AND execution_id = ? AND status = ?",
        (
            op.status.value,
            op.at_ms,
            dumps(op.result),
            op.error,
            tenant,
            op.execution_id,
            current.value,
        ),
    )


class SqliteLedger:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def get(self, tenant: TenantId, execution_id: str) -> LedgerEntry | None:
        rows = await self._select("tenant = ? AND execution_id = ?", (tenant, execution_id))
        return rows[0] if rows else None

    async def active(
        self, tenant: TenantId, idempotency_key: str, now_ms: int
    ) -> LedgerEntry | None:
        return await self._db.read(lambda conn: _holder(conn, tenant, idempotency_key, now_ms))

    async def query(self, tenant: TenantId, where: LedgerQuery) -> list[LedgerEntry]:
        clauses: list[str] = ["tenant = ?"]
        args: list[Any] = [tenant]
        for column, value in (
            ("customer", where.customer),
            ("tool", where.tool),
            ("session_id", where.session_id),
            ("group_id", where.group_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.from_ms is not None:
            clauses.append("started_at_ms >= ?")
            args.append(where.from_ms)
        if where.to_ms is not None:
            clauses.append("started_at_ms < ?")
            args.append(where.to_ms)
        statement = " AND ".join(clauses) + " ORDER BY started_at_ms, rowid LIMIT ?"
        return await self._select(statement, (*args, where.limit))

    async def _select(self, where: str, args: tuple[Any, ...]) -> list[LedgerEntry]:
        statement = f"SELECT {_COLUMNS} FROM ledger WHERE {where}"
        return await self._db.read(lambda conn: [_entry(r) for r in conn.execute(statement, args)])
