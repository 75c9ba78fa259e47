"""PgDatabase: the SQL adapters' functions run in transactions on pooled PostgreSQL
connections, each under row-level security for its tenant.

The port adapters (``acf.adapters.sql``) are one set of SQL functions for both dialects.
Here a ``read`` or ``write`` is a job on a queue served by as many threads (lanes) as the
pool has connections, so the event loop never waits on the network. A transaction starts
by switching to the role ``acf_tenant`` with ``acf.tenant`` set (or to ``acf_scanner``
for the cross-tenant scope): row-level security then keeps every statement inside the
tenant, whatever its SQL says.

Group commit: a lane that takes a job also takes the jobs queued behind it (up to
``MAX_BATCH``) and runs them in one transaction, switching the tenant between them. Under
load, concurrent reads and units of many sessions then share a BEGIN, a COMMIT and a WAL
flush. No caller learns a result before that COMMIT has returned.

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
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from acf.adapters.sql.database import POSTGRESQL, Dialect, SqlCursor

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


@dataclass(slots=True)
class _Job:
    tenant: str | None
    fn: Callable[[PgConnection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    alone: bool = False


Outcome = tuple[bool, Any]
"""(True, the job's result) or (False, the exception it raised)."""


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


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
        self._lanes = [
            threading.Thread(target=self._lane, name=f"{name}-pg-{i}", daemon=True)
            for i in range(max_size)
        ]
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._open = False
        self._closed = False
        self.shared = 0
        """Jobs that ran in a transaction with others (group commit at work)."""
        self.rerun = 0
        """Batches rolled back because one of their jobs raised (then run without it, and
        it alone)."""

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
        return await self._submit(tenant, fn)

    async def write(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        return await self._submit(tenant, fn)

    async def write_alone(self, tenant: str | None, fn: Callable[[PgConnection], T]) -> T:
        """``fn`` in a transaction of its own, ahead of the jobs queued for a batch: the row
        locks it takes are held for its statements only (taking and renewing leases)."""
        return await self._submit(tenant, fn, alone=True)

    async def _submit(
        self, tenant: str | None, fn: Callable[[PgConnection], T], alone: bool = False
    ) -> T:
        if self._closed or not self._open:
            raise RuntimeError("the PostgreSQL database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(tenant, fn, future, loop, alone))
        return await future

    # -- the lanes (threads) ---------------------------------------------------------------

    def _lane(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if first.alone:
                self._run_and_deliver([first])
                continue
            batch, stop = [first], False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.alone:  # at once, before the batch
                    self._run_and_deliver([nxt])
                    continue
                batch.append(nxt)
            self._run_and_deliver(batch)
            if stop:
                return

    def _run_and_deliver(self, jobs: list[_Job]) -> None:
        # A job whose caller was cancelled before it ran is not run (a lease taken for
        # a driver that is gone would block its session until the lease expires).
        jobs = [job for job in jobs if not job.future.cancelled()]
        if not jobs:
            return
        try:
            outcomes = self._run(jobs)
        except BaseException as exc:  # not an Exception: the lane survives, callers learn
            wrapped = RuntimeError(f"database job aborted: {exc!r}")
            wrapped.__cause__ = exc
            outcomes = [(False, wrapped)] * len(jobs)
        _deliver(jobs, outcomes)

    def _run(self, batch: list[_Job]) -> list[Outcome]:
        try:
            with self._pool.connection() as conn:
                return self._batch(conn, batch)
        except Exception as exc:  # no connection, or returning it failed
            return [(False, exc)] * len(batch)

    def _alone(self, conn: psycopg.Connection[Any], job: _Job) -> Outcome:
        try:
            with _transaction(conn, job.tenant):
                result = _call(conn, job)
            return True, result
        except Exception as exc:
            return False, exc

    def _batch(self, conn: psycopg.Connection[Any], batch: list[_Job]) -> list[Outcome]:
        """The batch in one transaction. A job that raises is taken out: the transaction
        is rolled back, the others run again together, then that job alone."""
        if len(batch) == 1:
            return [self._alone(conn, batch[0])]
        results: list[Any] = []
        ran = False
        try:
            with _transaction(conn, batch[0].tenant):
                scope: object = batch[0].tenant
                for job in batch:
                    if job.tenant != scope:
                        _scope(conn, job.tenant)
                        scope = job.tenant
                    results.append(_call(conn, job))
                ran = True
        except Exception as exc:
            if ran or conn.broken:  # the COMMIT failed, or the connection is gone
                return [(False, exc)] * len(batch)
            failed = len(results)  # the job that raised
            self.rerun += 1
            log.info("postgres.batch_rerun", jobs=len(batch), error=repr(exc)[:200])
            outcomes = self._batch(conn, batch[:failed] + batch[failed + 1 :])
            outcomes.insert(failed, self._alone(conn, batch[failed]))
            return outcomes
        self.shared += len(batch)
        return [(True, result) for result in results]

    async def close(self) -> None:
        """Stop taking work, let queued and running jobs finish, close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            for _ in self._lanes:
                self._queue.put(None)
            for lane in self._lanes:
                await asyncio.to_thread(lane.join)
        await asyncio.to_thread(self._pool.close)


def _deliver(jobs: list[_Job], outcomes: list[Outcome]) -> None:
    for job, (ok, value) in zip(jobs, outcomes, strict=True):
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed
            job.loop.call_soon_threadsafe(_settle, job.future, ok, value)


@contextlib.contextmanager
def _transaction(conn: psycopg.Connection[Any], tenant: str | None) -> Iterator[None]:
    """A transaction scoped to ``tenant``, begun in one round trip; committed when the
    block ends, rolled back when it (or its beginning) raises."""
    try:
        conn.execute(_begin(tenant))
        yield
    except BaseException:
        if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):  # the pool discards a bad connection
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _call(conn: psycopg.Connection[Any], job: _Job) -> Any:
    """``job``'s function; it fails if it left the transaction aborted (it caught a
    statement's error without a savepoint: PostgreSQL would answer the COMMIT with a silent
    ROLLBACK, and the batch's other jobs would fail on it)."""
    result = job.fn(PgConnection(conn))
    if conn.info.transaction_status == TransactionStatus.INERROR:
        raise psycopg.errors.InFailedSqlTransaction(
            "a statement failed in the transaction and its error was caught"
        )
    return result


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
