"""SQLite API keys, on a connection of their own.

Keys are read and written outside the runtime's single database thread and its file lock,
so ``acf keys create`` works while ``acf serve`` runs on the same file (SQLite's own
locking, WAL and a busy timeout keep the two writers apart; the table is tiny).
"""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from acf.adapters.sql.api_keys import SqlApiKeys
from acf.adapters.sql.database import SQLITE, Dialect, SqlConnection

T = TypeVar("T")


class _Connection(sqlite3.Connection):
    dialect = SQLITE


class _SideDatabase:
    """A short connection per call; writers take a process-wide lock, readers none (WAL
    readers never wait for the runtime's writer)."""

    dialect: Dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()

    def _run(self, fn: Callable[[SqlConnection], T], write: bool) -> T:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None, factory=_Connection)
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

    async def read(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        return await asyncio.to_thread(self._run, fn, False)

    async def write(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(self._run, fn, True)

    async def write_alone(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        return await self.write(tenant, fn)  # every call is its own transaction here


class SqliteApiKeys(SqlApiKeys):
    def __init__(self, path: Path) -> None:
        super().__init__(_SideDatabase(path))
