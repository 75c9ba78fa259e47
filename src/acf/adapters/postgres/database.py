"""PgDatabase: the SQL adapters' functions run in transactions on pooled PostgreSQL
connections, each under row-level security for its tenant.

The port adapters (``acf.adapters.sql``) are one set of SQL functions for both dialects.
Here each ``read`` or ``write`` takes a connection from a ``psycopg_pool`` pool and runs
the function in one transaction on a worker thread of a pool of the same size, so the
event loop never waits on the network. The transaction starts by switching to the role
``acf_tenant`` with ``acf.tenant`` set (or to ``acf_scanner`` for the cross-tenant scope):
row-level security then keeps every statement inside the tenant, whatever its SQL says.

Durability: a write returns after PostgreSQL's COMMIT, at the server's
``synchronous_commit`` level (``on`` by default: the commit is flushed to the WAL).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from acf.adapters.sql.database import POSTGRESQL, Dialect, SqlCursor

T = TypeVar("T")

TENANT_ROLE = "acf_tenant"
SCANNER_ROLE = "acf_scanner"
_PLACEHOLDER = re.compile(r"%|\?")


@functools.lru_cache(maxsize=4096)
def to_psycopg(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and a literal ``%`` to ``%%``)."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%", sql)


class PgConnection:
    """A psycopg connection seen as a ``SqlConnection`` (``?`` placeholders, tuples)."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> SqlCursor:
        return self._conn.execute(to_psycopg(sql), parameters)


class PgDatabase:
    dialect: Dialect = POSTGRESQL

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        caller_clock: bool = False,
        name: str = "acf",
    ) -> None:
        """``caller_clock``: compare deadlines with the callers' clock instead of the
        database's (tests on a virtual clock; never in production)."""
        self._caller_clock = caller_clock
        self._pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=self._configure,
            kwargs={"autocommit": True, "application_name": name},
            name=name,
        )
        self._threads = ThreadPoolExecutor(max_size, thread_name_prefix=f"{name}-pg")
        self._closed = False

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # JSON columns come back as their text, as on SQLite; the adapters parse them.
        conn.adapters.register_loader("jsonb", TextLoader)
        if self._caller_clock:
            conn.execute("SET acf.clock = 'caller'")

    async def open(self, timeout_s: float = 10.0) -> None:
        """Open the pool; raises if no connection could be made within ``timeout_s``."""
        await asyncio.to_thread(self._pool.open, True, timeout_s)

    def _run(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('role', %s, true), set_config('acf.tenant', %s, true)",
                (SCANNER_ROLE if tenant is None else TENANT_ROLE, tenant or ""),
            )
            return fn(PgConnection(conn))

    async def read(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        return await self._submit(tenant, fn)

    async def write(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        return await self._submit(tenant, fn)

    async def _submit(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        if self._closed:
            raise RuntimeError("the PostgreSQL database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run, tenant, fn)

    async def close(self) -> None:
        """Stop taking work, let running transactions finish, close the connections."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._threads.shutdown, True)
        await asyncio.to_thread(self._pool.close)
