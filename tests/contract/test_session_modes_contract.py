"""Contract: the session mode writes (``CheckMode``, ``StartCooldown``, ``EndCooldown``,
``CountFallback``) and a new session of a blocked customer opening blocked, on every
backend."""

import asyncio
import threading
from typing import Any

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.session_rows import lock_customer
from acf.adapters.sqlite import SqliteStore
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode
from acf.ports.event_store import EventQuery
from acf.ports.firewall import COOLDOWN_BUCKET, DAY_MS
from acf.ports.session_modes import CheckMode, CountFallback, EndCooldown, StartCooldown
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.testing import VirtualClock
from tests.contract.helpers import append, key

T = "t1"


async def opened(store: Store, customer: str = "whatsapp:+15550001") -> SessionRecord:
    r = await append(store, key(customer=customer))
    session = await store.sessions.get(T, r.session_id)
    assert session is not None
    return session


async def reread(store: Store, session_id: str) -> SessionRecord:
    session = await store.sessions.get(T, session_id)
    assert session is not None
    return session


async def set_mode(store: Store, session_id: str, mode: SessionMode) -> None:
    """Another writer's mode change (a handoff, a block), as one plain update."""
    assert isinstance(store, SqliteStore | PgStore)

    def run(conn: SqlConnection) -> None:
        conn.execute(
            "UPDATE sessions SET mode = ? WHERE tenant = ? AND session_id = ?",
            (mode.value, T, session_id),
        )

    await store.db.write(T, run)


async def events(store: Store, *kinds: EventKind) -> list[FabricEvent]:
    return await store.events.query(T, EventQuery(kinds=kinds, in_commit_order=False))


async def notices(store: Store, session_id: str) -> list[Any]:
    return list(await store.outbox.for_session(T, session_id))


def cooldown(session_id: str, until_ms: int, at_ms: int = 2_000, **extra: Any) -> StartCooldown:
    fields: dict[str, Any] = {"notice": "Let's take a short break."} | extra
    return StartCooldown(
        T, session_id, until_ms, "flood", "31 messages in 60 s", at_ms, "tr-1", **fields
    )


async def run(store: Store, op: Any) -> Any:
    return (await store.uow.commit(T, [op])).get(op)


async def test_check_mode_guards_the_unit(store: Store) -> None:
    session = await opened(store)
    assert session.mode is SessionMode.AGENT
    await run(store, CheckMode(session.session_id, SessionMode.AGENT))
    await set_mode(store, session.session_id, SessionMode.HUMAN)
    with pytest.raises(Conflict, match=r"^mode$"):
        await run(store, CheckMode(session.session_id, SessionMode.AGENT))
    await run(store, CheckMode(session.session_id, SessionMode.HUMAN))
    with pytest.raises(Conflict, match="no session"):
        await run(store, CheckMode("nope", SessionMode.AGENT))


async def test_a_cooldown_starts_once_with_one_notice(store: Store) -> None:
    session = await opened(store)
    sid = session.session_id
    assert await run(store, cooldown(sid, 60_000)) is True
    now = await reread(store, sid)
    assert (now.mode, now.mode_reason) == (SessionMode.COOLDOWN, "abuse:flood")
    assert (now.mode_since_ms, now.mode_until_ms) == (2_000, 60_000)
    (row,) = await notices(store, sid)
    assert row.turn_id.startswith("operator-") and row.position == 0
    assert row.payload == {"text": "Let's take a short break.", "author": "system"}
    (started,) = await events(store, EventKind.ABUSE_COOLDOWN_STARTED)
    assert started.data["until_ms"] == 60_000 and started.data["detector"] == "flood"
    assert (started.correlation.session_id, started.correlation.trace_id) == (sid, "tr-1")
    (suspected,) = await events(store, EventKind.ABUSE_SUSPECTED)
    assert suspected.data == {
        "detector": "flood",
        "detail": "31 messages in 60 s",
        "customer": "whatsapp:+15550001",
        "channel": Channel.WHATSAPP.value,
    }

    # Again while it runs: extended, never shortened; no second notice; suspected each time.
    assert await run(store, cooldown(sid, 90_000, at_ms=3_000)) is False
    assert (await reread(store, sid)).mode_until_ms == 90_000
    assert await run(store, cooldown(sid, 70_000, at_ms=4_000)) is False
    now = await reread(store, sid)
    assert (now.mode_until_ms, now.mode_since_ms, now.mode_reason) == (90_000, 2_000, "abuse:flood")
    assert len(await notices(store, sid)) == 1
    assert len(await events(store, EventKind.ABUSE_COOLDOWN_STARTED)) == 1
    assert len(await events(store, EventKind.ABUSE_SUSPECTED)) == 3


async def cooldowns_today(store: Store, customer: str, at_ms: int) -> int:
    day = at_ms - at_ms % DAY_MS
    (count,) = await store.customer_rates.tallies(
        T, Channel.WHATSAPP, customer, [(COOLDOWN_BUCKET, day)]
    )
    return count


async def test_only_a_cooldown_that_starts_counts_in_the_customers_day(store: Store) -> None:
    """``auto_block_after`` reads this tally: an extension, or a session held by a person or
    blocked, is no new cool-down."""
    session = await opened(store)
    sid = session.session_id
    assert await cooldowns_today(store, "whatsapp:+15550001", 2_000) == 0
    assert await run(store, cooldown(sid, 60_000)) is True
    assert await cooldowns_today(store, "whatsapp:+15550001", 2_000) == 1
    assert await run(store, cooldown(sid, 90_000, at_ms=3_000)) is False  # extended
    assert await cooldowns_today(store, "whatsapp:+15550001", 3_000) == 1
    assert await run(store, EndCooldown(T, sid, 90_000)) is True
    assert await run(store, cooldown(sid, 200_000, at_ms=100_000)) is True  # a new one
    assert await cooldowns_today(store, "whatsapp:+15550001", 100_000) == 2
    other = await opened(store, customer="whatsapp:+15550002")
    await set_mode(store, other.session_id, SessionMode.HUMAN)
    assert await run(store, cooldown(other.session_id, 60_000)) is False
    assert await cooldowns_today(store, "whatsapp:+15550002", 2_000) == 0


async def test_a_cooldown_without_a_notice_queues_none(store: Store) -> None:
    session = await opened(store)
    assert await run(store, cooldown(session.session_id, 60_000, notice=None)) is True
    assert await notices(store, session.session_id) == []
    (started,) = await events(store, EventKind.ABUSE_COOLDOWN_STARTED)
    assert started.data["notice_outbox_id"] is None


@pytest.mark.parametrize("mode", [SessionMode.HUMAN, SessionMode.BLOCKED])
async def test_a_stronger_mode_is_left_as_it_is(store: Store, mode: SessionMode) -> None:
    session = await opened(store)
    await set_mode(store, session.session_id, mode)
    assert await run(store, cooldown(session.session_id, 60_000)) is False
    now = await reread(store, session.session_id)
    assert (now.mode, now.mode_until_ms) == (mode, None)
    assert await notices(store, session.session_id) == []
    assert await events(store, EventKind.ABUSE_COOLDOWN_STARTED) == []
    (suspected,) = await events(store, EventKind.ABUSE_SUSPECTED)  # written every time
    assert suspected.data["detector"] == "flood"


async def test_a_cooldown_ends_once_its_time_is_up(store: Store) -> None:
    session = await opened(store)
    sid = session.session_id
    end = EndCooldown(T, sid, 59_999)
    assert await run(store, end) is False  # not in a cool-down at all
    await run(store, cooldown(sid, 60_000))
    assert await run(store, end) is False  # not yet
    assert (await reread(store, sid)).mode is SessionMode.COOLDOWN
    assert await events(store, EventKind.ABUSE_COOLDOWN_ENDED) == []
    assert await run(store, EndCooldown(T, sid, 60_000)) is True
    now = await reread(store, sid)
    assert (now.mode, now.mode_reason, now.mode_until_ms) == (SessionMode.AGENT, None, None)
    assert now.mode_since_ms == 60_000
    (ended,) = await events(store, EventKind.ABUSE_COOLDOWN_ENDED)
    assert ended.data["reason"] == "abuse:flood" and ended.data["until_ms"] == 60_000
    assert ended.correlation.session_id == sid
    assert await run(store, EndCooldown(T, sid, 70_000)) is False  # once


async def test_an_operator_ends_a_cooldown_early(store: Store) -> None:
    session = await opened(store)
    sid = session.session_id
    await run(store, cooldown(sid, 60_000))
    assert await run(store, EndCooldown(T, sid, 3_000, force=True, by="op-1")) is True
    assert (await reread(store, sid)).mode is SessionMode.AGENT
    (ended,) = await events(store, EventKind.ABUSE_COOLDOWN_ENDED)
    assert (ended.data["forced"], ended.data["by"]) == (True, "op-1")


async def test_ending_a_cooldown_never_ends_another_mode(store: Store) -> None:
    session = await opened(store)
    await set_mode(store, session.session_id, SessionMode.HUMAN)
    assert await run(store, EndCooldown(T, session.session_id, 1, force=True)) is False
    assert (await reread(store, session.session_id)).mode is SessionMode.HUMAN


async def test_fallbacks_are_counted(store: Store) -> None:
    session = await opened(store)
    assert session.fallbacks == 0
    assert await run(store, CountFallback(session.session_id, 2_000)) == 1
    assert await run(store, CountFallback(session.session_id, 3_000)) == 2
    assert (await reread(store, session.session_id)).fallbacks == 2
    with pytest.raises(Conflict, match="no session"):
        await run(store, CountFallback("nope", 3_000))


async def block(
    store: Store,
    customer: str,
    channel: Channel = Channel.WHATSAPP,
    expires_at_ms: int | None = None,
    lifted_at_ms: int | None = None,
) -> str:
    """A row of the block list, as ``BlockCustomer`` leaves it."""
    assert isinstance(store, SqliteStore | PgStore)
    block_id = new_id()

    def insert(conn: SqlConnection) -> None:
        conn.execute(
            "INSERT INTO customer_blocks (tenant, block_id, channel, customer, reason, "
            "created_by, created_at_ms, expires_at_ms, lifted_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                T,
                block_id,
                channel.value,
                customer,
                "abuse",
                "op-1",
                500,
                expires_at_ms,
                lifted_at_ms,
            ),
        )

    await store.db.write(T, insert)
    return block_id


async def test_a_blocked_customers_new_session_opens_blocked(store: Store) -> None:
    block_id = await block(store, "whatsapp:+15550009")
    session = await opened(store, "whatsapp:+15550009")
    assert session.mode is SessionMode.BLOCKED
    assert (session.mode_reason, session.mode_since_ms) == (f"block:{block_id}", 1_000)
    assert session.last_seq == 1  # the message is stored all the same


@pytest.mark.parametrize(
    ("label", "fields"),
    [
        ("expired", {"expires_at_ms": 1_000}),
        ("lifted", {"lifted_at_ms": 900}),
        ("on another channel", {"channel": Channel.SMS}),
    ],
)
async def test_a_block_that_does_not_apply_opens_the_agent(
    store: Store, label: str, fields: dict[str, Any]
) -> None:
    await block(store, "whatsapp:+15550009", **fields)
    session = await opened(store, "whatsapp:+15550009")
    assert (session.mode, session.mode_reason) == (SessionMode.AGENT, None), label


async def test_an_open_session_keeps_its_mode_when_a_block_appears(store: Store) -> None:
    """Opening is where the block list is read; moving open sessions is ``BlockCustomer``'s."""
    session = await opened(store, "whatsapp:+15550009")
    await block(store, "whatsapp:+15550009")
    again = await append(store, key(customer="whatsapp:+15550009"), at_ms=2_000)
    assert again.session_id == session.session_id
    assert (await reread(store, session.session_id)).mode is SessionMode.AGENT


async def _until_a_statement_waits_on_a_lock(url: str) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(3_000):
            found = conn.execute(query).fetchone()
            if found is not None and found[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the open never waited for the block")


@pytest.mark.backends("postgresql")
async def test_on_postgresql_an_open_waits_for_a_block_of_its_customer_in_progress(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    """A block being written holds the customer's lock (``lock_customer``, exclusive):
    a session opening meanwhile waits for it, then sees the block and opens blocked."""
    assert isinstance(store, PgStore)
    url = request.getfixturevalue("postgres_url")
    other = await open_pg_store(url, clock, pool_size=2, caller_clock=True)
    customer, inserted, release = "whatsapp:+15550009", threading.Event(), threading.Event()

    def blocking(conn: SqlConnection) -> None:
        lock_customer(conn, T, Channel.WHATSAPP.value, customer, exclusive=True)
        conn.execute(
            "INSERT INTO customer_blocks (tenant, block_id, channel, customer, reason, "
            "created_by, created_at_ms) VALUES (?,?,?,?,?,?,?)",
            (T, "b-1", Channel.WHATSAPP.value, customer, "abuse", "op-1", 500),
        )
        inserted.set()
        release.wait(30)

    try:
        holding = asyncio.create_task(store.db.write(T, blocking))
        assert await asyncio.to_thread(inserted.wait, 30)
        opening = asyncio.create_task(append(other, key(customer=customer)))
        await _until_a_statement_waits_on_a_lock(url)
        assert not opening.done()
        release.set()
        await holding
        accepted = await opening
    finally:
        release.set()
        await other.close()
    session = await reread(store, accepted.session_id)
    assert (session.mode, session.mode_reason) == (SessionMode.BLOCKED, "block:b-1")
