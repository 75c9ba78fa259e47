"""SQLite store of idempotent requests' responses."""

import sqlite3
from typing import Any

from acf.adapters.sqlite.database import SqliteDatabase
from acf.adapters.sqlite.registry import dumps, executes, loads
from acf.domain.ids import TenantId
from acf.ports.request_log import SaveResponse, StoredResponse

_COLUMNS = "idempotency_key, request_hash, status_code, response, created_at_ms"


def _row(r: tuple[Any, ...]) -> StoredResponse:
    return StoredResponse(r[0], r[1], r[2], loads(r[3]), r[4])


def _find(conn: sqlite3.Connection, tenant: str, key: str) -> StoredResponse | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM http_requests WHERE tenant = ? AND idempotency_key = ?",
        (tenant, key),
    ).fetchone()
    return None if row is None else _row(row)


@executes(SaveResponse)
def _save(conn: sqlite3.Connection, tenant: str, op: SaveResponse) -> StoredResponse:
    r = op.response
    conn.execute(
        f"INSERT OR IGNORE INTO http_requests (tenant, {_COLUMNS}) VALUES (?,?,?,?,?,?)",
        (
            tenant,
            r.idempotency_key,
            r.request_hash,
            r.status_code,
            dumps(dict(r.body)),
            r.created_at_ms,
        ),
    )
    stored = _find(conn, tenant, r.idempotency_key)
    assert stored is not None
    return stored


class SqliteRequestLog:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def find(self, tenant: TenantId, idempotency_key: str) -> StoredResponse | None:
        return await self._db.read(lambda conn: _find(conn, tenant, idempotency_key))
