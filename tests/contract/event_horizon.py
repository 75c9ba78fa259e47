"""Waiting until what a test committed is readable as events.

On SQLite an event is readable at its commit. On PostgreSQL reads stop below the oldest
transaction still running on the server, in any database (``Dialect.visible_events``):
what a test just committed stays hidden while another client of the shared server —
another test run, a migration, autovacuum's ANALYZE — has a transaction open that began
first. A test that reads events right after its own commit waits for those to end first.
"""

import asyncio

import pytest

from acf.adapters.postgres import PgStore
from acf.adapters.sql.database import SCANNER, SqlConnection
from acf.ports.store import Store

WAIT_S = 60.0
"""Bound on the wait: a transaction held open longer on the server fails the test with
what it is rather than hanging."""

_NEXT_XID = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
_OLDEST_RUNNING = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_BLOCKERS = (
    "SELECT datname, application_name, state, backend_xid::text FROM pg_stat_activity "
    "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)


def _scalar(sql: str, conn: SqlConnection) -> int:
    return int(conn.execute(sql).fetchone()[0])


async def readable(store: Store) -> None:
    """Return once every event committed before the call can be read."""
    if not isinstance(store, PgStore):
        return

    # Every transaction that committed before now has an id below the next one to be given.
    target = await store.db.read(SCANNER, lambda conn: _scalar(_NEXT_XID, conn))
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                oldest = await store.db.read(SCANNER, lambda conn: _scalar(_OLDEST_RUNNING, conn))
                if oldest >= target:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        blockers = await store.db.read(
            SCANNER, lambda conn: [tuple(r) for r in conn.execute(_BLOCKERS)]
        )
        pytest.fail(f"transactions older than the test's commit still run: {blockers}")
