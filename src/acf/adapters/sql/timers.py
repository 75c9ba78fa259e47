"""Timers: persisted deadlines, one per session and kind (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.domain.ids import SessionId, TenantId
from acf.ports.timers import CancelTimer, SetTimer, Timer

_COLUMNS = "tenant, session_id, kind, due_at_ms, payload"


def _timer(row: tuple[Any, ...]) -> Timer:
    return Timer(row[0], row[1], row[2], row[3], loads(row[4]))


@executes(SetTimer)
def _set(conn: SqlConnection, tenant: str, op: SetTimer) -> None:
    t = op.timer
    require_tenant(tenant, t.tenant)
    conn.execute(
        f"INSERT INTO timers ({_COLUMNS}) VALUES (?,?,?,?,?) "
        "ON CONFLICT (tenant, session_id, kind) DO UPDATE SET "
        "due_at_ms = excluded.due_at_ms, payload = excluded.payload",
        (tenant, t.session_id, t.kind, t.due_at_ms, dumps(dict(t.payload))),
    )


@executes(CancelTimer)
def _cancel(conn: SqlConnection, tenant: str, op: CancelTimer) -> bool:
    cur = conn.execute(
        "DELETE FROM timers WHERE tenant = ? AND session_id = ? AND kind = ?",
        (tenant, op.session_id, op.kind),
    )
    return cur.rowcount > 0


class SqlTimers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def due(self, tenant: TenantId, now_ms: int, limit: int = 100) -> list[Timer]:
        return await self._db.read(
            tenant,
            lambda conn: [
                _timer(r)
                for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM timers WHERE tenant = ? AND due_at_ms <= acf_now(?) "
                    "ORDER BY due_at_ms, session_id, kind LIMIT ?",
                    (tenant, now_ms, limit),
                )
            ],
        )

    async def get(self, tenant: TenantId, session_id: SessionId, kind: str) -> Timer | None:
        def run(conn: SqlConnection) -> Timer | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM timers WHERE tenant = ? AND session_id = ? AND kind = ?",
                (tenant, session_id, kind),
            ).fetchone()
            return None if row is None else _timer(row)

        return await self._db.read(tenant, run)
