"""Tool ledger (both dialects)."""

from typing import Any

from acf.adapters.sql.database import INTEGRITY_ERRORS, Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
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
    "AND (expires_at_ms IS NULL OR expires_at_ms > acf_now(?) OR status IN ('started', 'in_doubt'))"
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


def _holder(conn: SqlConnection, tenant: str, key: str, now: int) -> LedgerEntry | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE {_HOLDER}", (tenant, key, now))
    found = row.fetchone()
    return None if found is None else _entry(found)


@executes(BeginExecution)
def _begin(conn: SqlConnection, tenant: str, op: BeginExecution) -> Begun:
    e = op.entry
    require_tenant(tenant, e.tenant)
    earlier = _holder(conn, tenant, e.idempotency_key, e.started_at_ms)
    if earlier is not None:
        return Begun(earlier, started=False)
    # An expired or failed holder gives the key up; then this row takes it. A concurrent
    # begin that took the key first (PostgreSQL: another transaction) makes the insert
    # violate the key's unique constraint: then that one is the holder.
    conn.execute("SAVEPOINT ledger_begin")
    try:
        _take_key(conn, tenant, e)
    except INTEGRITY_ERRORS:
        conn.execute("ROLLBACK TO ledger_begin")
        conn.execute("RELEASE ledger_begin")
        winner = _holder(conn, tenant, e.idempotency_key, e.started_at_ms)
        if winner is None:
            raise
        return Begun(winner, started=False)
    conn.execute("RELEASE ledger_begin")
    return Begun(e, started=True)


def _take_key(conn: SqlConnection, tenant: str, e: LedgerEntry) -> None:
    # Only a row that gave the key up loses it. On PostgreSQL this statement sees rows
    # committed after this transaction's holder check: a concurrent winner's fresh row
    # keeps its key, so the insert below conflicts with it.
    conn.execute(
        "UPDATE ledger SET holds_key = NULL WHERE tenant = ? AND idempotency_key = ? "
        "AND holds_key = 1 AND (status IN ('failed', 'compensated') OR "
        "(expires_at_ms IS NOT NULL AND expires_at_ms <= acf_now(?) "
        "AND status NOT IN ('started', 'in_doubt')))",
        (tenant, e.idempotency_key, e.started_at_ms),
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


@executes(FinishExecution)
def _finish(conn: SqlConnection, tenant: str, op: FinishExecution) -> None:
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


class SqlLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: TenantId, execution_id: str) -> LedgerEntry | None:
        rows = await self._select("tenant = ? AND execution_id = ?", (tenant, execution_id))
        return rows[0] if rows else None

    async def active(
        self, tenant: TenantId, idempotency_key: str, now_ms: int
    ) -> LedgerEntry | None:
        return await self._db.read(
            tenant, lambda conn: _holder(conn, tenant, idempotency_key, now_ms)
        )

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
        order = self._db.dialect.ledger_order
        statement = " AND ".join(clauses) + f" ORDER BY {order} LIMIT ?"
        return await self._select(statement, (*args, where.limit))

    async def _select(self, where: str, args: tuple[Any, ...]) -> list[LedgerEntry]:
        tenant = str(args[0])  # every query here names the tenant first
        statement = f"SELECT {_COLUMNS} FROM ledger WHERE {where}"
        return await self._db.read(
            tenant, lambda conn: [_entry(r) for r in conn.execute(statement, args)]
        )
