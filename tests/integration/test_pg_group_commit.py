"""Group commit on PostgreSQL: jobs queued together share one transaction, each still
scoped to its own tenant, and one failing job neither loses nor half-applies the others."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.postgres.database import MAX_BATCH, PgDatabase, _begin
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SCANNER
from acf.adapters.sql.lease import SqlSessionLease


async def _database(url: str, lanes: int) -> PgDatabase:
    db = PgDatabase(libpq_url(url), min_size=1, max_size=lanes, name="acf-test")
    await db.open()
    return db


@pytest.fixture
async def one_lane(url: str) -> AsyncIterator[PgDatabase]:
    """One lane: while a slow job holds it, everything submitted queues behind it and
    runs as one batch."""
    db = await _database(url, 1)
    try:
        yield db
    finally:
        await db.close()


def _slow(conn: Any) -> None:
    time.sleep(0.3)  # on the lane's thread: the jobs submitted meanwhile queue up


def _insert_lease(session_id: str, fail_after: bool = False) -> Any:
    def run(conn: Any) -> str:
        conn.execute(
            "INSERT INTO session_leases (tenant, session_id, holder, fence, expires_at_ms) "
            "VALUES (current_setting('acf.tenant'), ?, 'h', 1, 0)",
            (session_id,),
        )
        if fail_after:
            raise ValueError(f"{session_id} refused after its insert")
        return str(conn.execute("SELECT current_setting('acf.tenant')").fetchone()[0])

    return run


def _count(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM session_leases").fetchone()[0])


async def _queued_behind_a_slow_job(db: PgDatabase, *jobs: Any) -> list[Any]:
    slow = asyncio.create_task(db.write(SCANNER, _slow))
    await asyncio.sleep(0.05)  # the lane is in the slow job
    results = await asyncio.gather(*jobs, return_exceptions=True)
    await slow
    return results


async def test_jobs_queued_together_share_a_transaction_each_in_its_tenant(
    one_lane: PgDatabase,
) -> None:
    tenants = [f"gc-{i % 3}" for i in range(12)]
    before = await one_lane.read(SCANNER, _count)  # the module's other tests leave leases
    results = await _queued_behind_a_slow_job(
        one_lane,
        *(one_lane.write(t, _insert_lease(f"s{i}")) for i, t in enumerate(tenants)),
        *(one_lane.read(t, _count) for t in ("gc-0", "gc-1", "gc-2", "gc-none")),
    )

    assert one_lane.shared >= 16  # the 12 writes and 4 reads ran as one batch
    assert results[:12] == tenants  # each job ran as its own tenant
    # Row-level security per job inside the shared transaction: each tenant sees its 4.
    assert results[12:] == [4, 4, 4, 0]
    assert await one_lane.read(SCANNER, _count) == before + 12


async def test_a_failing_job_rolls_back_alone_and_the_others_commit(
    one_lane: PgDatabase,
) -> None:
    results = await _queued_behind_a_slow_job(
        one_lane,
        one_lane.write("gc-f", _insert_lease("f1")),
        one_lane.write("gc-f", _insert_lease("f2", fail_after=True)),
        one_lane.write("gc-f", _insert_lease("f3")),
    )

    assert results[0] == "gc-f" and results[2] == "gc-f"
    assert isinstance(results[1], ValueError)
    assert one_lane.rerun == 1  # the batch was rolled back
    assert one_lane.shared == 2  # f1 and f3 ran again together, f2 alone
    rows = await one_lane.read(
        "gc-f",
        lambda conn: sorted(r[0] for r in conn.execute("SELECT session_id FROM session_leases")),
    )
    assert rows == ["f1", "f3"]  # f2's insert did not survive its failure


async def test_a_database_error_in_a_batch_is_that_job_s_alone(one_lane: PgDatabase) -> None:
    await one_lane.write("gc-d", _insert_lease("dup"))
    results = await _queued_behind_a_slow_job(
        one_lane,
        one_lane.write("gc-d", _insert_lease("d1")),
        one_lane.write("gc-d", _insert_lease("dup")),  # the primary key is taken
        one_lane.write("gc-d", _insert_lease("d2")),
    )

    assert isinstance(results[1], psycopg.errors.UniqueViolation)
    assert results[0] == results[2] == "gc-d"
    assert await one_lane.read("gc-d", _count) == 3


async def test_a_batch_is_at_most_max_batch_jobs(one_lane: PgDatabase) -> None:
    def transaction_id(conn: Any) -> int:
        return int(conn.execute("SELECT txid_current()").fetchone()[0])

    ids = await _queued_behind_a_slow_job(
        one_lane, *(one_lane.write("gc-m", transaction_id) for _ in range(MAX_BATCH + 5))
    )

    per_transaction = sorted({i: ids.count(i) for i in ids}.values(), reverse=True)
    assert per_transaction == [MAX_BATCH, 5]


async def test_close_finishes_the_queued_jobs_then_refuses(url: str) -> None:
    db = await _database(url, 2)
    queued = [asyncio.create_task(db.read("gc-c", _count)) for _ in range(50)]
    await asyncio.sleep(0)  # all submitted
    await db.close()

    assert all(task.result() == 0 for task in queued)
    with pytest.raises(RuntimeError, match="closed"):
        await db.read("gc-c", _count)


async def test_a_job_alone_runs_before_the_batch_in_a_transaction_of_its_own(
    one_lane: PgDatabase,
) -> None:
    done: list[str] = []

    def transaction_id(conn: Any) -> int:
        return int(conn.execute("SELECT txid_current()").fetchone()[0])

    async def tracked(name: str, job: Any) -> int:
        result: int = await job
        done.append(name)
        return result

    ids = await _queued_behind_a_slow_job(
        one_lane,
        *(tracked(f"batch{i}", one_lane.write("gc-a", transaction_id)) for i in range(4)),
        tracked("alone", one_lane.write_alone("gc-a", transaction_id)),
    )

    assert len(set(ids[:4])) == 1  # the four shared a transaction
    assert ids[4] not in ids[:4]  # the lease write's was its own
    assert done[0] == "alone"  # run first, though queued last


async def test_a_job_whose_caller_was_cancelled_before_it_ran_is_not_run(
    one_lane: PgDatabase,
) -> None:
    slow = asyncio.create_task(one_lane.write(SCANNER, _slow))
    await asyncio.sleep(0.05)  # the lane is in the slow job
    gone = asyncio.create_task(one_lane.write_alone("gc-x", _insert_lease("gone")))
    kept = asyncio.create_task(one_lane.write("gc-x", _insert_lease("kept")))
    await asyncio.sleep(0)  # both queued
    gone.cancel()
    await slow
    assert await kept == "gc-x"
    rows = await one_lane.read(
        "gc-x",
        lambda conn: [r[0] for r in conn.execute("SELECT session_id FROM session_leases")],
    )
    assert rows == ["kept"]  # a lease for a caller that is gone would block its session


async def test_session_leases_skip_the_batches_and_a_live_one_is_seen_without_a_lock(
    url: str, one_lane: PgDatabase
) -> None:
    leases = SqlSessionLease(one_lane, SystemClock())
    held = await leases.acquire("gc-l", "s1", "holder-a", 60_000)
    assert held is not None

    # Behind a slow job and a queued batch, the renewal and a rival's try run first.
    done: list[str] = []

    async def tracked(name: str, job: Any) -> Any:
        result = await job
        done.append(name)
        return result

    results = await _queued_behind_a_slow_job(
        one_lane,
        *(tracked(f"batch{i}", one_lane.write("gc-l", _count)) for i in range(3)),
        tracked("renew", leases.renew(held, 60_000)),
        tracked("rival", leases.acquire("gc-l", "s1", "holder-b", 60_000)),
    )
    assert set(done[:2]) == {"renew", "rival"}
    assert results[3] is not None and results[4] is None

    # Another transaction holds the lease row locked (a batch of another process): the
    # rival still learns at once that the lease is live, without waiting for that lock.
    with psycopg.connect(libpq_url(url)) as other:
        other.execute(
            "SELECT 1 FROM session_leases WHERE tenant = 'gc-l' AND session_id = 's1' FOR UPDATE"
        )
        assert await asyncio.wait_for(leases.acquire("gc-l", "s1", "holder-b", 60_000), 5) is None


def _swallow_a_failed_statement(conn: Any) -> None:
    conn.execute(
        "INSERT INTO session_leases (tenant, session_id, holder, fence, expires_at_ms) "
        "VALUES (current_setting('acf.tenant'), 'kept', 'h', 1, 0)"
    )
    # No savepoint: the transaction is aborted, and a COMMIT would silently roll back.
    with contextlib.suppress(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1 / 0")


async def test_a_transaction_aborted_under_a_job_that_caught_the_error_is_not_reported_committed(
    one_lane: PgDatabase,
) -> None:
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        await one_lane.write("gc-aborted", _swallow_a_failed_statement)
    assert await one_lane.read("gc-aborted", _count) == 0
    # The lane and its connection still work, in a fresh transaction scoped as asked.
    assert await one_lane.write("gc-after", _insert_lease("after")) == "gc-after"
    assert await one_lane.read("gc-aborted", _count) == 0


def test_a_transaction_begins_in_one_round_trip_with_the_tenant_quoted() -> None:
    begin = _begin("it's")
    assert begin.startswith("BEGIN; SELECT set_config('role', 'acf_tenant', true)")
    assert "set_config('acf.tenant', 'it''s', true)" in begin
    assert "'acf_scanner'" in _begin(SCANNER)


async def test_a_job_that_left_the_transaction_aborted_is_taken_out_of_its_batch(
    one_lane: PgDatabase,
) -> None:
    results = await _queued_behind_a_slow_job(
        one_lane,
        one_lane.write("gc-out-a", _insert_lease("a")),
        one_lane.write("gc-out-x", _swallow_a_failed_statement),
        one_lane.write("gc-out-b", _insert_lease("b")),
    )
    assert results[0] == "gc-out-a" and results[2] == "gc-out-b"
    assert isinstance(results[1], psycopg.errors.InFailedSqlTransaction)
    counts = [await one_lane.read(t, _count) for t in ("gc-out-a", "gc-out-x", "gc-out-b")]
    assert counts == [1, 0, 1]


async def test_a_transaction_that_fails_to_begin_is_rolled_back(
    one_lane: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acf.adapters.postgres import database

    begin = database._begin
    failures = iter([False, True])  # the slow job begins, the batch behind it does not

    def failing_once(tenant: str | None) -> str:
        # BEGIN is taken, then the scope's statement fails (a role not granted, say).
        return "BEGIN; SELECT 1 / 0" if next(failures, False) else begin(tenant)

    monkeypatch.setattr(database, "_begin", failing_once)
    results = await _queued_behind_a_slow_job(
        one_lane,
        one_lane.write("gc-begin", _insert_lease("a")),
        one_lane.write("gc-begin", _insert_lease("b")),
    )
    # The batch's transaction was rolled back: on the same connection, each job ran again.
    assert results == ["gc-begin", "gc-begin"]
    assert await one_lane.read("gc-begin", _count) == 2
