"""The database thread survives bad jobs, and nobody waits forever on a closed database."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from acf.adapters.sqlite.database import SqliteDatabase


async def test_a_job_raising_base_exception_fails_alone(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.db")
    await asyncio.to_thread(db.open)
    try:
        await db.write(None, lambda c: c.execute("CREATE TABLE t (v INTEGER)"))

        def explode(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            raise SystemExit("boom")

        outcomes = await asyncio.gather(
            db.write(None, explode),
            db.write(None, lambda c: c.execute("INSERT INTO t VALUES (2)")),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], RuntimeError)
        assert "SystemExit('boom')" in str(outcomes[0])
        rows = await asyncio.wait_for(
            db.read(None, lambda c: c.execute("SELECT v FROM t").fetchall()), 5
        )
        assert rows == [(2,)]  # the failing unit left nothing, the other committed
    finally:
        await db.close()


async def test_closed_database_refuses_new_work_and_releases_the_lock(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.db")
    await asyncio.to_thread(db.open)
    await db.close()
    with pytest.raises(RuntimeError, match="is not open"):
        await db.read(None, lambda c: c.execute("SELECT 1").fetchone())
    again = SqliteDatabase(tmp_path / "x.db")
    await asyncio.to_thread(again.open)
    await again.close()


async def test_a_cancelled_close_can_be_finished(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.db")
    await asyncio.to_thread(db.open)
    task = asyncio.create_task(db.close())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await db.close()
    again = SqliteDatabase(tmp_path / "x.db")
    await asyncio.to_thread(again.open)  # the lock was released
    await again.close()
