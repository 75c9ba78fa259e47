"""The PostgreSQL store's own promises: row-level security by tenant, deadlines in the
database's clock, commit-ordered event ids."""

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SCANNER
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.testing import VirtualClock
from tests.contract.helpers import append, key


@pytest.fixture
async def store(url: str) -> AsyncIterator[PgStore]:
    opened = await open_pg_store(url, VirtualClock(), pool_size=4)  # the database's clock
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_transaction_sees_only_its_tenant_and_none_without_one(store: PgStore) -> None:
    await append(store, key("rls-a", "c1"))
    await append(store, key("rls-b", "c1"))

    def count(conn: object) -> int:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])  # type: ignore[attr-defined]

    # No WHERE on tenant at all: row-level security alone keeps each tenant to its rows.
    assert await store.db.read("rls-a", count) == 1
    assert await store.db.read("rls-b", count) == 1
    assert await store.db.read("nobody", count) == 0
    assert await store.db.read(SCANNER, count) >= 2  # the recovery scanner's role

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await store.db.write(
            "rls-a",
            lambda conn: conn.execute(
                "UPDATE sessions SET tenant = 'rls-b' WHERE tenant = 'rls-a'"
            ),
        )


def test_a_query_without_a_tenant_sees_nothing(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO session_leases (tenant, session_id, holder, fence, expires_at_ms) "
            "VALUES ('rls-x', 's', 'h', 1, 0) ON CONFLICT DO NOTHING"
        )
        with conn.transaction():
            conn.execute("SET LOCAL ROLE acf_tenant")  # as the application, no tenant set
            assert conn.execute("SELECT count(*) FROM session_leases").fetchone() == (0,)
        with conn.transaction():
            conn.execute("SET LOCAL ROLE acf_tenant")
            conn.execute("SELECT set_config('acf.tenant', 'rls-x', true)")
            assert conn.execute("SELECT count(*) FROM session_leases").fetchone() == (1,)


async def test_leases_expire_by_the_database_clock_not_the_callers(store: PgStore) -> None:
    # The store's virtual clock never moves: only the database's time can expire a lease.
    lease = await store.lease.acquire("t-clock", "s1", "w1", 300)
    assert lease is not None
    assert await store.lease.acquire("t-clock", "s1", "w2", 300) is None
    await asyncio.sleep(0.4)
    taken = await store.lease.acquire("t-clock", "s1", "w2", 300)
    assert taken is not None and taken.fence == lease.fence + 1
    assert await store.lease.renew(lease, 300) is None  # the old holder lost it


async def test_an_event_committed_late_is_not_skipped_by_a_reader(store: PgStore, url: str) -> None:
    """Ids follow commit order for readers: an event whose transaction is still open keeps
    later-committed events from being read, so a reader's cursor never passes it."""
    tenant = "t-order"

    def event(n: int) -> FabricEvent:
        return FabricEvent(EventKind.TURN_PROGRESS, n, Correlation(tenant, "0" * 31 + "1", "s"))

    with psycopg.connect(libpq_url(url)) as slow:
        slow.execute("SELECT set_config('acf.tenant', %s, true)", (tenant,))
        slow.execute(
            "INSERT INTO events (event_id, tenant, session_id, kind, at_ms, trace_id, data) "
            "VALUES (acf_next_event_id(), %s, 's', 'turn.progress', 1, 'x', '{}')",
            (tenant,),
        )  # open, not committed: it took its id first
        await store.uow.commit(tenant, [AppendEvent(event(2))])
        seen = await store.events.query(tenant, EventQuery(after_id=0))
        assert seen == []  # the later commit waits behind the open transaction
        slow.commit()
    seen = await store.events.query(tenant, EventQuery(after_id=0))
    assert [e.at_ms for e in seen] == [1, 2]
