"""Group commit: the jobs queued while a database is busy run together in one transaction.

Both databases run the SQL adapters' functions as jobs on a queue served by threads
(lanes), so the event loop never waits on a statement: ``SqliteDatabase`` has one lane,
``PgDatabase`` one per pooled connection. The rules are the same for both:

- A lane that takes a job also takes the jobs queued behind it, up to ``max_batch``, and
  runs them in one transaction: under load, many callers share a BEGIN, a COMMIT and a
  flush to disk.
- A job marked ``alone`` (taking and renewing a lease) runs at once, in a transaction of
  its own, ahead of the batch being gathered.
- A job whose caller was cancelled before it ran is not run (a lease taken for a driver
  that is gone would block its session until the lease expires).
- No caller learns a result before its transaction's COMMIT has returned; a COMMIT that
  fails is every job's error, as it would be a job's alone.
- A job that raises is taken out of its batch, so the others still commit: inside a
  savepoint of its own (``in_savepoints``: SQLite), or by rolling the batch back and
  running the others again together and that job alone (``Rerunning``: PostgreSQL, where
  a savepoint per job would cost a round trip each). The SQL functions only write
  through the connection, so running one again after a rollback is running it once.
- A lane survives anything a job raises; its callers learn it.

What differs between the databases is a ``Transaction``: how a transaction begins on the
lane's connection (scoped to a tenant), how a job is called, how the transaction commits
and rolls back; and for the strategy taking a failing job out, how a savepoint is taken
(``SavepointTransaction``) or how the scope changes between jobs (``RerunTransaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

Outcome = tuple[bool, Any]
"""(True, the job's result) or (False, the exception it raised)."""


@dataclass(slots=True)
class Job:
    fn: Callable[[Any], Any]
    """The SQL function, given the lane's connection."""
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    tenant: str | None
    writes: bool = True
    """Whether it may write (``in_savepoints`` runs reads outside savepoints, and a batch
    of reads outside a transaction)."""
    alone: bool = False
    """Run at once in a transaction of its own, never in a batch."""


class Transaction(Protocol):
    """One connection running a lane's transactions: what differs between databases."""

    def begin(self, tenant: str | None) -> None:
        """Begin a transaction scoped to ``tenant``."""
        ...

    def call(self, job: Job) -> Any:
        """Run ``job``'s function; raise if it left the transaction unable to commit."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None:
        """Roll back the transaction if one is open (one that failed to begin may be
        half-open)."""
        ...


class SavepointTransaction(Transaction, Protocol):
    """For ``in_savepoints``: a database whose jobs share one scope."""

    def savepoint(self) -> None: ...

    def release(self) -> None: ...

    def rollback_to_savepoint(self) -> None:
        """Undo the job's writes since ``savepoint`` and release it."""
        ...


class RerunTransaction(Transaction, Protocol):
    """For ``Rerunning``: a database that scopes each job to its tenant."""

    @property
    def broken(self) -> bool:
        """The connection is lost: nothing more can run on it."""
        ...

    def scope(self, tenant: str | None) -> None:
        """The rest of the transaction runs as ``tenant``."""
        ...


RunBatch = Callable[[list[Job]], list[Outcome]]
"""A lane's way of running a batch (at least one job, none cancelled): one outcome per
job, in order, all known only after the batch's COMMIT."""


class JobQueue:
    """The jobs waiting for a lane, and the loop each lane runs."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.submitted = 0
        self.finished = 0
        """Jobs queued and jobs answered (or skipped, their caller gone): with one lane,
        ``finished == submitted`` means no job is queued or running."""

    def submit(
        self,
        tenant: str | None,
        fn: Callable[[Any], Any],
        *,
        writes: bool = True,
        alone: bool = False,
    ) -> asyncio.Future[Any]:
        """Queue ``fn``; the future holds its outcome once its transaction has ended."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.submitted += 1
        self._queue.put(Job(fn, future, loop, tenant, writes, alone))
        return future

    def stop(self, lanes: int = 1) -> None:
        """Ask ``lanes`` lanes to return once they have run the jobs queued before."""
        for _ in range(lanes):
            self._queue.put(None)

    def serve(self, run: RunBatch) -> None:
        """A lane: run batches of queued jobs with ``run`` until ``stop``."""
        while True:
            first = self._queue.get()
            if first is None:
                return
            if first.alone:
                self._run_and_deliver(run, [first])
                continue
            batch, stop = [first], False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.alone:  # at once, before the batch
                    self._run_and_deliver(run, [nxt])
                    continue
                batch.append(nxt)
            self._run_and_deliver(run, batch)
            if stop:
                return

    def fail_queued(self, error: Exception) -> None:
        """Answer every job still queued with ``error`` (no lane will run them)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self.finished += 1
                deliver([job], [(False, error)])

    def _run_and_deliver(self, run: RunBatch, jobs: list[Job]) -> None:
        live = [job for job in jobs if not job.future.cancelled()]
        if live:
            try:
                outcomes = run(live)
            except BaseException as exc:  # the lane survives; its callers learn
                outcomes = [(False, deliverable(exc))] * len(live)
            deliver(live, outcomes)
        self.finished += len(jobs)


def deliver(jobs: list[Job], outcomes: list[Outcome]) -> None:
    """Hand each job's outcome to its caller's event loop (one wake-up per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that caller's loop has closed
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, (ok, value) in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def deliverable(exc: BaseException) -> Exception:
    """An exception safe to set on a caller's future (SystemExit there would stop its loop)."""
    if isinstance(exc, Exception):
        return exc
    wrapped = RuntimeError(f"database job aborted: {exc!r}")
    wrapped.__cause__ = exc
    return wrapped


# -- taking a failing job out of its batch ------------------------------------------------


@contextlib.contextmanager
def transaction(tx: Transaction, tenant: str | None) -> Iterator[None]:
    """A transaction scoped to ``tenant``: committed when the block ends, rolled back when
    it, its beginning or its COMMIT raises (a COMMIT that fails may leave it open)."""
    try:
        tx.begin(tenant)
        yield
        tx.commit()
    except BaseException:
        tx.rollback()
        raise


def in_savepoints(tx: SavepointTransaction, batch: list[Job]) -> list[Outcome]:
    """The batch in one transaction, each writing job in a savepoint of its own: a job that
    raises rolls back to it, alone. A batch of reads runs outside a transaction."""
    if not any(job.writes for job in batch):
        return [_caught(tx, job) for job in batch]
    outcomes: list[Outcome] = []
    try:
        with transaction(tx, batch[0].tenant):
            for job in batch:
                outcomes.append(_in_savepoint(tx, job) if job.writes else _caught(tx, job))
    except Exception as exc:  # the batch as a whole failed: nobody's write landed
        return [(False, exc)] * len(batch)
    return outcomes


def _caught(tx: Transaction, job: Job) -> Outcome:
    try:
        return True, tx.call(job)
    except BaseException as exc:  # never let a job kill the lane
        return False, deliverable(exc)


def _in_savepoint(tx: SavepointTransaction, job: Job) -> Outcome:
    tx.savepoint()
    try:
        value = tx.call(job)
    except BaseException as exc:
        tx.rollback_to_savepoint()
        return False, deliverable(exc)
    tx.release()
    return True, value


class Rerunning:
    """Taking a failing job out by running the others again: the batch in one
    transaction, switching the scope between jobs of different tenants; a job that raises
    rolls it back, the others run again together (taking out any other that raises, the
    same way), then that job alone, in a transaction of its own."""

    def __init__(self, on_rerun: Callable[[int, Exception], None]) -> None:
        """``on_rerun(jobs, error)``: a batch of ``jobs`` was rolled back for ``error``."""
        self._on_rerun = on_rerun
        self.shared = 0
        """Jobs that ran in a transaction with others (group commit at work)."""
        self.rerun = 0
        """Batches rolled back because one of their jobs raised."""

    def __call__(self, tx: RerunTransaction, batch: list[Job]) -> list[Outcome]:
        if len(batch) == 1:
            return [_alone(tx, batch[0])]
        results: list[Any] = []
        ran = False
        try:
            with transaction(tx, batch[0].tenant):
                scope = batch[0].tenant
                for job in batch:
                    if job.tenant != scope:
                        tx.scope(job.tenant)
                        scope = job.tenant
                    results.append(tx.call(job))
                ran = True
        except Exception as exc:
            if ran or tx.broken:  # the COMMIT failed, or the connection is gone
                return [(False, exc)] * len(batch)
            failed = len(results)  # the job that raised (or began the transaction)
            self.rerun += 1
            self._on_rerun(len(batch), exc)
            outcomes = self(tx, batch[:failed] + batch[failed + 1 :])
            outcomes.insert(failed, _alone(tx, batch[failed]))
            return outcomes
        self.shared += len(batch)
        return [(True, result) for result in results]


def _alone(tx: Transaction, job: Job) -> Outcome:
    try:
        with transaction(tx, job.tenant):
            result = tx.call(job)
        return True, result
    except Exception as exc:
        return False, exc
