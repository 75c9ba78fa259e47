"""Contract: AgentSessions and SaveAgentSession, on every backend.

At most one open (ACTIVE or AWAITING_USER) row per conversation: a unit saving a second
one fails whole. On PostgreSQL the race is also run between two stores (two connection
pools, as two processes): the second unit waits on the first's uncommitted row, then fails.
"""

import asyncio
import threading
from dataclasses import replace

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.registry import EXECUTORS
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import InvalidValue
from acf.domain.ids import new_id
from acf.ports.agent_sessions import AgentSessionConflict, SaveAgentSession
from acf.ports.dead_letters import DeadLetter, RecordDeadLetter
from acf.ports.store import Store
from acf.testing import VirtualClock

ACTIVE, AWAITING = AgentSessionStatus.ACTIVE, AgentSessionStatus.AWAITING_USER


def row(
    session_id: str = "s1",
    status: AgentSessionStatus = ACTIVE,
    *,
    agent: str = "support",
    at_ms: int = 1_000,
    tenant: str = "t1",
) -> AgentSessionRow:
    return AgentSessionRow(
        tenant=tenant,
        row_id=new_id(),
        session_id=session_id,
        agent=agent,
        profile="orders",
        status=status,
        created_at_ms=at_ms,
        last_interaction_at_ms=at_ms,
    )


async def save(store: Store, *rows: AgentSessionRow) -> None:
    await store.uow.commit("t1", [SaveAgentSession(r) for r in rows])


async def test_a_saved_row_reads_back_whole_by_every_lookup(store: Store) -> None:
    asked = replace(
        row(),
        status=AWAITING,
        agent_session_id="as-1",
        pending_ask_id="ask-1",
        pending_question="Which order? «1001» or 1002",
        pending_options=("1001", "1002", '{"json": 1}'),
        asked_at_ms=1_500,
        execution_key="key-1",
        execution_input="sha256:abc",
        execution_open=True,
        last_error="service said 503",
        last_interaction_at_ms=1_600,
    )
    await save(store, asked)
    assert await store.agent_sessions.open_for("t1", "s1") == asked
    assert await store.agent_sessions.latest_for("t1", "s1", "support") == asked
    assert await store.agent_sessions.by_agent_session("t1", "as-1") == asked
    assert await store.agent_sessions.list_for("t1", "s1") == [asked]


async def test_nothing_is_found_where_nothing_was_saved(store: Store) -> None:
    await save(store, row("s1"))
    assert await store.agent_sessions.open_for("t1", "s2") is None
    assert await store.agent_sessions.latest_for("t1", "s1", "sales") is None
    assert await store.agent_sessions.by_agent_session("t1", "as-404") is None
    assert await store.agent_sessions.list_for("t1", "s2") == []


async def test_saving_a_row_again_replaces_it_and_a_closed_row_is_not_open(store: Store) -> None:
    first = row()
    await save(store, first)
    completed = replace(
        first,
        status=AgentSessionStatus.COMPLETED,
        agent_session_id="as-1",
        execution_key="key-1",
        last_interaction_at_ms=2_000,
    )
    await save(store, completed)
    assert await store.agent_sessions.open_for("t1", "s1") is None
    assert await store.agent_sessions.list_for("t1", "s1") == [completed]
    assert await store.agent_sessions.latest_for("t1", "s1", "support") == completed
    # Every status reads back as saved; empty options and a closed execution too.
    for status in AgentSessionStatus:
        again = replace(completed, status=status, pending_options=(), execution_open=False)
        await save(store, again)
        assert await store.agent_sessions.latest_for("t1", "s1", "support") == again


async def test_an_open_row_may_be_saved_again_while_it_stays_open(store: Store) -> None:
    active = row()
    await save(store, active)
    awaiting = replace(active, status=AWAITING, pending_ask_id="ask-1", pending_question="?")
    await save(store, awaiting)
    assert await store.agent_sessions.open_for("t1", "s1") == awaiting


async def test_a_second_open_row_for_a_conversation_fails_the_whole_unit(store: Store) -> None:
    await save(store, row("s1"))
    other_conversation = row("s2")
    letter = DeadLetter("t1", "dl-1", "s9", "support", "turn", "group", "trace", "p", "e", 1, 1)
    for status in (ACTIVE, AWAITING):
        with pytest.raises(AgentSessionConflict, match="s1"):
            await store.uow.commit(
                "t1",
                [
                    SaveAgentSession(other_conversation),
                    RecordDeadLetter(letter),
                    SaveAgentSession(row("s1", status)),
                ],
            )
    assert await store.agent_sessions.open_for("t1", "s2") is None  # nothing committed
    assert await store.dead_letters.get("t1", "dl-1") is None
    assert len(await store.agent_sessions.list_for("t1", "s1")) == 1
    # Two open rows in one unit fail it as well.
    with pytest.raises(AgentSessionConflict):
        await save(store, row("s3"), row("s3", AWAITING))
    assert await store.agent_sessions.list_for("t1", "s3") == []


async def test_a_new_open_row_is_allowed_once_the_old_one_closed(store: Store) -> None:
    old = row("s1", at_ms=1_000)
    await save(store, old)
    closed = replace(old, status=AgentSessionStatus.ABANDONED, last_interaction_at_ms=2_000)
    fresh = row("s1", at_ms=3_000)
    await save(store, closed, fresh)  # closed first, in the same unit: no conflict
    assert await store.agent_sessions.open_for("t1", "s1") == fresh
    assert await store.agent_sessions.list_for("t1", "s1") == [closed, fresh]
    # Reopening the closed one now would make two.
    with pytest.raises(AgentSessionConflict):
        await save(store, replace(closed, status=ACTIVE))


async def test_latest_is_the_most_recently_used_row_of_the_agent(store: Store) -> None:
    older = replace(row(at_ms=1_000), status=AgentSessionStatus.COMPLETED)
    used_later = replace(
        row(at_ms=2_000), status=AgentSessionStatus.FAILED, last_interaction_at_ms=9_000
    )
    newer = replace(row(at_ms=5_000), status=AgentSessionStatus.COMPLETED)
    tied = replace(
        row(at_ms=6_000), status=AgentSessionStatus.COMPLETED, last_interaction_at_ms=9_000
    )
    sales = row(agent="sales", at_ms=10_000)
    await save(store, older, used_later, newer)
    assert await store.agent_sessions.latest_for("t1", "s1", "support") == used_later
    await save(store, tied, sales)
    # Same last use: the one created later.
    assert await store.agent_sessions.latest_for("t1", "s1", "support") == tied
    assert await store.agent_sessions.latest_for("t1", "s1", "sales") == sales
    listed = await store.agent_sessions.list_for("t1", "s1")
    assert listed == [older, used_later, newer, tied, sales]  # oldest first


async def test_the_reverse_lookup_finds_the_row_naming_the_service_session(
    store: Store,
) -> None:
    first = replace(row("s1"), agent_session_id="as-1")
    second = replace(row("s2"), agent_session_id="as-2")
    await save(store, first, second)
    assert await store.agent_sessions.by_agent_session("t1", "as-2") == second
    assert await store.agent_sessions.by_agent_session("t1", "as-1") == first


async def test_a_row_of_another_tenant_is_refused(store: Store) -> None:
    with pytest.raises(InvalidValue):
        await save(store, row(tenant="t2"))
    assert await store.agent_sessions.list_for("t2", "s1") == []


async def test_racing_units_opening_rows_for_one_conversation_one_wins(store: Store) -> None:
    candidates = [row("s1", at_ms=1_000 + i) for i in range(5)]
    results = await asyncio.gather(
        *(save(store, candidate) for candidate in candidates), return_exceptions=True
    )
    won = [c for c, r in zip(candidates, results, strict=True) if r is None]
    assert len(won) == 1
    assert all(isinstance(r, AgentSessionConflict) for r in results if r is not None)
    assert await store.agent_sessions.open_for("t1", "s1") == won[0]
    assert await store.agent_sessions.list_for("t1", "s1") == won


async def _until_a_statement_waits_on_a_lock(url: str) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(1_000):
            found = conn.execute(query).fetchone()
            if found is not None and found[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second unit never waited for the first")


@pytest.mark.backends("postgresql")
async def test_on_postgresql_the_second_unit_waits_for_the_first_then_fails(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    assert isinstance(store, PgStore)
    url = request.getfixturevalue("postgres_url")
    other = await open_pg_store(url, clock, pool_size=2, caller_clock=True)
    first, second = row("s1", at_ms=1_000), row("s1", AWAITING, at_ms=1_001)
    inserted, release = threading.Event(), threading.Event()

    def hold(conn: SqlConnection) -> None:
        # The first unit's save, left uncommitted until the second unit is waiting on it.
        EXECUTORS[SaveAgentSession](conn, "t1", SaveAgentSession(first))
        inserted.set()
        release.wait(30)

    try:
        holding = asyncio.create_task(store.db.write("t1", hold))
        assert await asyncio.to_thread(inserted.wait, 30)
        racing = asyncio.create_task(other.uow.commit("t1", [SaveAgentSession(second)]))
        await _until_a_statement_waits_on_a_lock(url)
        assert not racing.done()
        release.set()
        await holding
        with pytest.raises(AgentSessionConflict):
            await racing
    finally:
        release.set()
        await other.close()
    assert await store.agent_sessions.list_for("t1", "s1") == [first]


@pytest.mark.backends("postgresql")
async def test_on_postgresql_row_level_security_hides_other_tenants_rows(
    backend: str, store: Store
) -> None:
    assert isinstance(store, PgStore)
    await store.uow.commit("t2", [SaveAgentSession(row(tenant="t2"))])

    def count(conn: SqlConnection) -> int:
        # No tenant in the query: the policy alone must keep t2's row out of t1's scope.
        return int(conn.execute("SELECT count(*) FROM agent_sessions").fetchone()[0])

    assert await store.db.read("t1", count) == 0
    assert await store.db.read("t2", count) == 1
