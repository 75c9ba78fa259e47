"""SQLite API keys, on a connection of their own.

Keys are read and written outside the runtime's single database thread and its file lock,
so ``acf keys create`` works while ``acf serve`` runs on the same file (SQLite's own
locking, WAL and a busy timeout keep the two writers apart; the table is tiny).
"""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from acf.domain.ids import TenantId, new_id
from acf.ports.api_keys import ApiKeyRecord, hash_key

T = TypeVar("T")
_COLUMNS = "tenant, key_id, name, created_at_ms, revoked_at_ms"


def _record(r: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(r[0], r[1], r[2], r[3], r[4])


class SqliteApiKeys:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()

    def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(self._run, fn, True)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Reads take no write lock (WAL readers never wait for the runtime's writer)."""
        return await asyncio.to_thread(self._run, fn, False)

    async def create(self, tenant: TenantId, name: str, key: str, at_ms: int) -> ApiKeyRecord:
        record = ApiKeyRecord(tenant, new_id(), name, at_ms)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO api_keys (tenant, key_id, key_hash, name, created_at_ms) "
                "VALUES (?,?,?,?,?)",
                (tenant, record.key_id, hash_key(key), name, at_ms),
            )
        )
        return record

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        digest = hash_key(key)

        def find(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at_ms IS NULL",
                (digest,),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._read(find)

    async def list_keys(self, tenant: TenantId) -> list[ApiKeyRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = ? ORDER BY created_at_ms",
                (tenant,),
            ).fetchall()
        )
        return [_record(r) for r in rows]

    async def revoke(self, tenant: TenantId, key_id: str, at_ms: int) -> bool:
        cursor = await self._write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET revoked_at_ms = ? WHERE tenant = ? AND key_id = ? "
                "AND revoked_at_ms IS NULL",
                (at_ms, tenant, key_id),
            )
        )
        return cursor.rowcount == 1
