"""PgDatabase: the SQL adapters' functions run in transactions on pooled PostgreSQL
connections, each under row-level security for its tenant.

The port adapters (``acf.adapters.sql``) are one set of SQL functions for both dialects.
Here a ``read`` or ``write`` is a job on a queue served by as many threads (lanes) as the
pool has connections, so the event loop never waits on the network. A transaction starts
by switching to the role ``acf_tenant`` with ``acf.tenant`` set (or to ``acf_scanner``
for the cross-tenant scope): row-level security then keeps every statement inside the
tenant, whatever its SQL says.

Group commit (``acf.adapters.sql.group_commit``, the rules shared with SQLite): a lane
that takes a job also takes the jobs queued behind it (up to ``MAX_BATCH``) and runs them
in one transaction, switching the tenant between them. Under load, concurrent reads and
units of many sessions then share a BEGIN, a COMMIT and a WAL flush. No caller learns a
result before that COMMIT has returned.

- A job that raises is taken out: the transaction is rolled back, the other jobs run
  again together, then that job alone, in its own transaction (the SQL functions only
  write through the connection, so running one again after a rollback is running it
  once).
- A COMMIT that fails leaves every job of the batch with that error, as it would a job
  alone.
- Taking and renewing a lease (``write_alone``) are never batched: they run at once in a
  transaction of their own, so the lease rows they lock are not held while other jobs
  run, and a renewal never waits behind a batch.
- A deadlock between two batches (PostgreSQL detects it after ``deadlock_timeout`` and
  aborts one) costs that wait and the re-runs, never a unit.
- A job whose caller was cancelled before it ran is not run.

Durability: a write returns after PostgreSQL's COMMIT, at the server's
``synchronous_commit`` level (``on`` by default: the commit is flushed to the WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from acf.adapters.sql.database import POSTGRESQL, Dialect, SqlCursor
from acf.adapters.sql.group_commit import Job, JobQueue, Outcome, Rerunning

T = TypeVar("T")

log = structlog.get_logger("acf.postgres")

MAX_BATCH = 32
"""Jobs run in one transaction at most."""
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


class _PgTransaction:
    """A lane's pooled connection running its transactions (``RerunTransaction``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def broken(self) -> bool:
        return self._conn.broken

    def begin(self, tenant: str | None) -> None:
        self._conn.execute(_begin(tenant))

    def scope(self, tenant: str | None) -> None:
        _scope(self._conn, tenant)

    def call(self, job: Job) -> Any:
        """``job``'s function; it fails if it left the transaction aborted (it caught a
        statement's error without a savepoint: PostgreSQL would answer the COMMIT with a
        silent ROLLBACK, and the batch's other jobs would fail on it)."""
        result = job.fn(PgConnection(self._conn))
        if self._conn.info.transaction_status == TransactionStatus.INERROR:
            raise psycopg.errors.InFailedSqlTransaction(
                "a statement failed in the transaction and its error was caught"
            )
        return result

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        conn = self._conn
        if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):  # the pool discards a bad connection
                conn.execute("ROLLBACK")


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
        """``max_size``: connections, and lanes running jobs. ``caller_clock``: compare
        deadlines with the callers' clock instead of the database's (tests on a virtual
        clock; never in production)."""
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
        self._name = name
        self._jobs = JobQueue(MAX_BATCH)
        self._rerunning = Rerunning(_log_rerun)
        self._lanes = [
            threading.Thread(
                target=self._jobs.serve, args=(self._run,), name=f"{name}-pg-{i}", daemon=True
            )
            for i in range(max_size)
        ]
        self._open = False
        self._closed = False

    @property
    def shared(self) -> int:
        """Jobs that ran in a transaction with others (group commit at work)."""
        return self._rerunning.shared

    @property
    def rerun(self) -> int:
        """Batches rolled back because one of their jobs raised (then run without it, and
        it alone)."""
        return self._rerunning.rerun

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # JSON columns come back as their text, as on SQLite; the adapters parse them.
        conn.adapters.register_loader("jsonb", TextLoader)
        if self._caller_clock:
            conn.execute("SET acf.clock = 'caller'")

    async def open(self, timeout_s: float = 10.0) -> None:
        """Open the pool and start the lanes; raises if no connection could be made within
        ``timeout_s``."""
        await asyncio.to_thread(self._pool.open, True, timeout_s)
        for lane in self._lanes:
            lane.start()
        self._open = True

    async def read(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        return await self._submit(tenant, fn, writes=False)

    async def write(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        return await self._submit(tenant, fn)

    async def write_alone(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        """``fn`` in a transaction of its own, ahead of the jobs queued for a batch: the row
        locks it takes are held for its statements only (taking and renewing leases)."""
        return await self._submit(tenant, fn, alone=True)

    async def _submit(
        self,
        tenant: str | None,
        fn: Callable[[PgConnection], T],
        *,
        writes: bool = True,
        alone: bool = False,
    ) -> T:
        if self._closed or not self._open:
            raise RuntimeError("the PostgreSQL database is closed")
        result: T = await self._jobs.submit(tenant, fn, writes=writes, alone=alone)
        return result

    def _run(self, batch: list[Job]) -> list[Outcome]:
        """A lane's batch on a pooled connection."""
        try:
            with self._pool.connection() as conn:
                return self._rerunning(_PgTransaction(conn), batch)
        except Exception as exc:  # no connection, or returning it failed
            return [(False, exc)] * len(batch)

    async def close(self) -> None:
        """Stop taking work, let queued and running jobs finish, close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            self._jobs.stop(len(self._lanes))
            for lane in self._lanes:
                await asyncio.to_thread(lane.join)
        await asyncio.to_thread(self._pool.close)


def _log_rerun(jobs: int, error: Exception) -> None:
    log.info("postgres.batch_rerun", jobs=jobs, error=repr(error)[:200])


@functools.lru_cache(maxsize=1024)
def _begin(tenant: str | None) -> str:
    """BEGIN and the tenant's scope as one query: without parameters psycopg sends it by
    the simple protocol, which takes several statements in one round trip."""
    return (
        sql.SQL("BEGIN; SELECT set_config('role', {}, true), set_config('acf.tenant', {}, true)")
        .format(
            sql.Literal(SCANNER_ROLE if tenant is None else TENANT_ROLE), sql.Literal(tenant or "")
        )
        .as_string(None)
    )


def _scope(conn: psycopg.Connection[Any], tenant: str | None) -> None:
    """The rest of the transaction runs as ``tenant`` (``None``: the cross-tenant scope)."""
    conn.execute(
        "SELECT set_config('role', %s, true), set_config('acf.tenant', %s, true)",
        (SCANNER_ROLE if tenant is None else TENANT_ROLE, tenant or ""),
    )
