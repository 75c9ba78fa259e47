"""Store of idempotent requests' responses (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads
from acf.domain.errors import Conflict
from acf.domain.ids import TenantId
from acf.ports.request_log import ReserveRequest, SaveResponse, StoredResponse

_COLUMNS = "idempotency_key, request_hash, status_code, response, created_at_ms"


def _row(r: tuple[Any, ...]) -> StoredResponse:
    return StoredResponse(r[0], r[1], r[2], loads(r[3]), r[4])


def _find(conn: SqlConnection, tenant: str, key: str) -> StoredResponse | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM http_requests WHERE tenant = ? AND idempotency_key = ?",
        (tenant, key),
    ).fetchone()
    return None if row is None else _row(row)


@executes(ReserveRequest)
def _reserve(conn: SqlConnection, tenant: str, op: ReserveRequest) -> None:
    conn.execute(
        "INSERT INTO http_requests (tenant, idempotency_key, request_hash, "
        "created_at_ms) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
        (tenant, op.idempotency_key, op.request_hash, op.at_ms),
    )
    held = _find(conn, tenant, op.idempotency_key)
    if held is None or held.request_hash != op.request_hash:
        raise Conflict(f"idempotency key {op.idempotency_key!r} is held for another request")


@executes(SaveResponse)
def _save(conn: SqlConnection, tenant: str, op: SaveResponse) -> StoredResponse:
    conn.execute(
        "UPDATE http_requests SET status_code = ?, response = ? "
        "WHERE tenant = ? AND idempotency_key = ? AND status_code IS NULL",
        (op.status_code, dumps(dict(op.body)), tenant, op.idempotency_key),
    )
    stored = _find(conn, tenant, op.idempotency_key)
    if stored is None:
        raise Conflict(f"idempotency key {op.idempotency_key!r} was never reserved")
    return stored


class SqlRequestLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, tenant: TenantId, idempotency_key: str) -> StoredResponse | None:
        return await self._db.read(tenant, lambda conn: _find(conn, tenant, idempotency_key))
