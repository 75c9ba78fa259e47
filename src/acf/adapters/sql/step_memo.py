"""Step memo (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads
from acf.domain.ids import TenantId
from acf.ports.step_memo import MemoKey, RememberStep

_KEY = "tenant = ? AND group_id = ? AND name = ? AND fingerprint = ?"


def _select(conn: SqlConnection, tenant: str, key: MemoKey) -> tuple[bool, Any]:
    row = conn.execute(
        f"SELECT result FROM step_memo WHERE {_KEY}",
        (tenant, key.group_id, key.name, key.fingerprint),
    ).fetchone()
    return (False, None) if row is None else (True, loads(row[0]))


@executes(RememberStep)
def _remember(conn: SqlConnection, tenant: str, op: RememberStep) -> Any:
    k = op.key
    conn.execute(
        "INSERT INTO step_memo (tenant, group_id, name, fingerprint, result, created_at_ms) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (tenant, k.group_id, k.name, k.fingerprint, dumps(op.result), op.at_ms),
    )
    return _select(conn, tenant, k)[1]


class SqlStepMemo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def recall(self, tenant: TenantId, key: MemoKey) -> tuple[bool, Any]:
        return await self._db.read(tenant, lambda conn: _select(conn, tenant, key))
