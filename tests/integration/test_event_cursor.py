"""The event cursor on PostgreSQL under concurrent commits: a reader resuming after the
last id it read (SSE ``Last-Event-ID``) never misses an event whose smaller id commits
after a larger one, in whatever order the transactions commit."""

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.testing import VirtualClock
from tests.contract.event_horizon import readable
from tests.integration.services import postgres_admin_dsn

TENANT = "t-cursor"
WRITERS = 3


@pytest.fixture
async def store(url: str) -> AsyncIterator[PgStore]:
    opened = await open_pg_store(url, VirtualClock(), pool_size=4)
    try:
        yield opened
    finally:
        await opened.close()


def _event(n: int) -> FabricEvent:
    return FabricEvent(EventKind.TURN_PROGRESS, n, Correlation(TENANT, "0" * 31 + "1", "s"))


def _open_writer(url: str, stack: ExitStack, n: int) -> tuple[psycopg.Connection[object], int]:
    """A transaction that wrote event ``n`` and is not committed; the id it took."""
    conn = stack.enter_context(psycopg.connect(libpq_url(url)))
    conn.execute("SELECT set_config('acf.tenant', %s, true)", (TENANT,))
    row = conn.execute(
        "INSERT INTO events (event_id, tenant, session_id, kind, at_ms, trace_id, data) "
        "VALUES (acf_next_event_id(), %s, 's', 'turn.progress', %s, 'x', '{}') "
        "RETURNING event_id",
        (TENANT, n),
    ).fetchone()
    assert row is not None
    return conn, int(row[0])


class Reader:
    """A stream's reader: reads after its cursor, moves the cursor to the last id read."""

    def __init__(self, store: PgStore, after: int) -> None:
        self.store = store
        self.after = after
        self.seen: list[int] = []

    async def read(self) -> None:
        events = await self.store.events.query(TENANT, EventQuery(after_id=self.after))
        self.seen += [e.at_ms for e in events]
        if events:
            self.after = events[-1].event_id


def _orders() -> Iterator[tuple[int, ...]]:
    return itertools.permutations(range(WRITERS + 1))


@pytest.mark.parametrize("order", list(_orders()), ids=lambda o: "-".join(map(str, o)))
async def test_a_resumed_reader_misses_nothing_whatever_the_commit_order(
    store: PgStore, url: str, order: tuple[int, ...]
) -> None:
    """Writers 0..WRITERS-1 take their ids in that order (the last one, acf's own unit of
    work, takes the largest); they commit in ``order``, the reader reading after each."""
    await readable(store)
    reader = Reader(store, await store.events.last_id(TENANT))
    with ExitStack() as stack:
        writers = [_open_writer(url, stack, n) for n in range(WRITERS)]
        ids = [taken for _, taken in writers]
        assert ids == sorted(ids)
        for n in order:
            if n == WRITERS:  # the largest id, committed through the store
                await store.uow.commit(TENANT, [AppendEvent(_event(WRITERS))])
            else:
                writers[n][0].commit()
            await reader.read()
    await readable(store)
    await reader.read()
    assert reader.seen == list(range(WRITERS + 1))


async def test_a_transaction_open_in_another_database_holds_events_back_and_loses_none(
    store: PgStore,
) -> None:
    """The horizon is the server's: an open transaction anywhere on it delays the stream
    (the contract suites' reads wait for it: ``tests/contract/event_horizon.py``)."""
    await readable(store)
    reader = Reader(store, await store.events.last_id(TENANT))
    with psycopg.connect(postgres_admin_dsn()) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # open, holding a transaction id
        await store.uow.commit(TENANT, [AppendEvent(_event(1))])
        await reader.read()
        assert reader.seen == []
        elsewhere.rollback()
    await readable(store)
    await reader.read()
    assert reader.seen == [1]


async def test_a_lookup_out_of_commit_order_sees_what_committed_despite_an_open_transaction(
    store: PgStore,
) -> None:
    """A lookup (a turn group's confirmation settlement) must not wait on the horizon: the
    event committed, so ``in_commit_order=False`` reads it while the cursor still may not."""
    await readable(store)
    after = await store.events.last_id(TENANT)
    with psycopg.connect(postgres_admin_dsn()) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")
        await store.uow.commit(TENANT, [AppendEvent(_event(7))])
        ordered = await store.events.query(TENANT, EventQuery(after_id=after))
        lookup = await store.events.query(TENANT, EventQuery(after_id=after, in_commit_order=False))
        assert [e.at_ms for e in ordered] == []
        assert [e.at_ms for e in lookup] == [7]
        elsewhere.rollback()
