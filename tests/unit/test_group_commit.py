"""The group-commit rules both databases share, on a real SQLite file: jobs queued behind a
busy lane run together, a job alone runs first, a cancelled caller's job is not run, a
failing job is taken out (in a savepoint, or by running the others again), and no caller
learns a result before its transaction's COMMIT."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acf.adapters.sql.group_commit import (
    Job,
    JobQueue,
    Outcome,
    Rerunning,
    in_savepoints,
)


class ScopedSqlite:
    """A SQLite connection whose transactions carry a scope (a row of the ``scope``
    table, written inside the transaction), so both strategies can run on it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.commits = 0
        self.before_commit: Callable[[], None] = lambda: None

    @property
    def broken(self) -> bool:
        return False

    def begin(self, tenant: str | None) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.scope(tenant)

    def scope(self, tenant: str | None) -> None:
        self.conn.execute("UPDATE scope SET tenant = ?", (tenant,))

    def call(self, job: Job) -> Any:
        return job.fn(self.conn)

    def commit(self) -> None:
        self.before_commit()
        self.conn.execute("COMMIT")
        self.commits += 1

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def savepoint(self) -> None:
        self.conn.execute("SAVEPOINT unit")

    def release(self) -> None:
        self.conn.execute("RELEASE unit")

    def rollback_to_savepoint(self) -> None:
        self.conn.execute("ROLLBACK TO unit")
        self.conn.execute("RELEASE unit")


@dataclass
class Lane:
    """One lane serving ``jobs`` on ``tx``, recording the size of each batch it runs."""

    jobs: JobQueue
    tx: ScopedSqlite
    strategy: str
    rerunning: Rerunning = field(default_factory=lambda: Rerunning(lambda jobs, error: None))
    batches: list[int] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.jobs.serve, args=(self.run,), daemon=True)
        self.thread.start()

    async def close(self) -> None:
        """Let the queued jobs run, then stop the lane."""
        if self.thread is not None:
            self.release.set()
            self.jobs.stop()
            await asyncio.to_thread(self.thread.join)
            self.thread = None

    def run(self, batch: list[Job]) -> list[Outcome]:
        self.batches.append(len(batch))
        if self.strategy == "savepoints":
            return in_savepoints(self.tx, batch)
        return self.rerunning(self.tx, batch)

    def submit(
        self, fn: Callable[[Any], Any], tenant: str | None = "t", **kw: bool
    ) -> asyncio.Future[Any]:
        return self.jobs.submit(tenant, fn, **kw)

    async def hold(self) -> asyncio.Future[Any]:
        """Keep the lane busy in a job until ``release`` is set: what is submitted
        meanwhile queues behind it."""

        def busy(conn: sqlite3.Connection) -> None:
            self.started.set()
            self.release.wait()

        held = self.submit(busy)
        await asyncio.to_thread(self.started.wait)
        return held


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY, tenant TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS scope (tenant TEXT)")
    conn.execute("INSERT INTO scope VALUES (NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS children (parent INTEGER "
        "REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    return conn


@pytest.fixture(params=["savepoints", "rerunning"])
async def lane(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Lane]:
    conn = _connect(tmp_path / "gc.db")
    lane = Lane(JobQueue(max_batch=4), ScopedSqlite(conn), request.param)
    lane.start()
    try:
        yield lane
    finally:
        await lane.close()
        conn.close()


def insert(name: str, fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    """Insert ``name`` in the current scope, then (if ``fail``) raise; returns the scope."""

    def run(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO items SELECT ?, tenant FROM scope", (name,))
        if fail:
            raise ValueError(f"{name} refused after its insert")
        return str(conn.execute("SELECT tenant FROM scope").fetchone()[0])

    return run


def names(conn: sqlite3.Connection) -> list[str]:
    return sorted(row[0] for row in conn.execute("SELECT name FROM items"))


async def test_jobs_queued_behind_a_busy_lane_run_together_up_to_max_batch(lane: Lane) -> None:
    held = await lane.hold()
    queued = [lane.submit(insert(f"n{i}"), tenant=f"t{i % 3}") for i in range(10)]
    lane.release.set()
    await held

    scopes = await asyncio.gather(*queued)
    if lane.strategy == "rerunning":  # each job in its own tenant's scope
        assert scopes == [f"t{i % 3}" for i in range(10)]
    assert lane.batches == [1, 4, 4, 2]
    assert lane.tx.commits == 4
    assert names(lane.tx.conn) == sorted(f"n{i}" for i in range(10))


async def test_a_job_alone_runs_first_in_a_transaction_of_its_own(lane: Lane) -> None:
    done: list[str] = []

    async def tracked(name: str, job: asyncio.Future[Any]) -> None:
        await job
        done.append(name)

    held = await lane.hold()
    batch = [tracked(f"b{i}", lane.submit(insert(f"b{i}"))) for i in range(3)]
    alone = tracked("alone", lane.submit(insert("alone"), alone=True))
    lane.release.set()
    await asyncio.gather(held, *batch, alone)

    assert lane.batches == [1, 1, 3]  # the busy job, the job alone, then the batch
    assert done[0] == "alone"


async def test_a_job_whose_caller_was_cancelled_before_it_ran_is_not_run(lane: Lane) -> None:
    held = await lane.hold()
    gone = lane.submit(insert("gone"))
    kept = lane.submit(insert("kept"))
    gone.cancel()
    lane.release.set()
    await held

    assert await kept == "t"
    assert names(lane.tx.conn) == ["kept"]
    assert lane.batches == [1, 1]
    await lane.close()
    assert lane.jobs.finished == lane.jobs.submitted  # the skipped job counts as answered


async def test_a_failing_job_is_taken_out_and_the_others_commit(lane: Lane) -> None:
    held = await lane.hold()
    jobs = [lane.submit(insert("a")), lane.submit(insert("x", fail=True)), lane.submit(insert("b"))]
    lane.release.set()
    await held
    results = await asyncio.gather(*jobs, return_exceptions=True)

    assert results[0] == results[2] == "t"
    assert isinstance(results[1], ValueError)
    assert names(lane.tx.conn) == ["a", "b"]  # x's insert did not survive its failure
    if lane.strategy == "rerunning":  # rolled back, a and b ran again together, x alone
        assert (lane.rerunning.rerun, lane.rerunning.shared) == (1, 2)


async def test_a_job_raising_base_exception_fails_alone_and_the_lane_survives(lane: Lane) -> None:
    def explode(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items VALUES ('boom', NULL)")
        raise SystemExit("boom")

    held = await lane.hold()
    jobs = [lane.submit(explode), lane.submit(insert("kept"))]
    lane.release.set()
    await held
    results = await asyncio.gather(*jobs, return_exceptions=True)

    if lane.strategy == "savepoints":  # its savepoint: the others commit
        assert isinstance(results[0], RuntimeError) and "SystemExit('boom')" in str(results[0])
        assert results[1] == "t"
        assert names(lane.tx.conn) == ["kept"]
    else:  # not an Exception: the batch is aborted and every caller learns it
        assert all(isinstance(r, RuntimeError) for r in results)
        assert names(lane.tx.conn) == []
    assert await lane.submit(insert("after")) == "t"  # the lane still serves


async def test_a_commit_that_fails_is_every_job_s_error(lane: Lane) -> None:
    held = await lane.hold()
    jobs = [
        lane.submit(insert("a")),
        lane.submit(lambda conn: conn.execute("INSERT INTO children VALUES (7)").rowcount),
        lane.submit(insert("b")),
    ]
    lane.release.set()
    await held
    results = await asyncio.gather(*jobs, return_exceptions=True)

    # The orphan child fails the deferred foreign key at COMMIT, after every job ran.
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results)
    assert names(lane.tx.conn) == []


async def test_no_caller_learns_a_result_before_the_commit(lane: Lane) -> None:
    loop = asyncio.get_running_loop()
    seen: list[list[bool]] = []
    jobs: list[asyncio.Future[Any]] = []

    async def settled() -> list[bool]:
        return [job.done() for job in jobs]

    def look_before_commit() -> None:
        # On the caller's loop, after anything already handed to it: nothing is settled.
        seen.append(asyncio.run_coroutine_threadsafe(settled(), loop).result())

    held = await lane.hold()
    jobs.extend(lane.submit(insert(f"n{i}")) for i in range(3))
    lane.tx.before_commit = look_before_commit
    lane.release.set()
    await held
    await asyncio.gather(*jobs)
    await lane.close()

    assert lane.batches == [1, 3]
    assert seen == [[False, False, False]] * 2  # at the busy job's COMMIT, and the batch's


async def test_a_batch_of_reads_runs_outside_a_transaction_in_savepoints(tmp_path: Path) -> None:
    tx = ScopedSqlite(_connect(tmp_path / "gc.db"))
    loop = asyncio.get_running_loop()

    def read(conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    def job(writes: bool) -> Job:
        return Job(read, loop.create_future(), loop, "t", writes=writes)

    assert in_savepoints(tx, [job(False), job(False)]) == [(True, False), (True, False)]
    assert in_savepoints(tx, [job(False), job(True)]) == [(True, True), (True, True)]
    assert tx.commits == 1


async def test_jobs_still_queued_when_the_lane_stops_are_answered(tmp_path: Path) -> None:
    jobs = JobQueue(max_batch=4)
    stopped = RuntimeError("closed")
    jobs.stop()
    queued = jobs.submit("t", insert("late"))
    jobs.serve(_never)  # returns at the stop, before the job
    jobs.fail_queued(stopped)

    with pytest.raises(RuntimeError, match="closed"):
        await queued
    assert jobs.finished == jobs.submitted == 1


def _never(batch: list[Job]) -> list[Outcome]:
    raise AssertionError("no batch should run")
