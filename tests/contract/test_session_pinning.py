"""Sessions and configuration versions on every backend: the version a session is pinned to
when it opens (read from the tenant's pointer in the opening transaction, canary arm by
``canary_arm``), ``RepinSession`` and ``CloseSession`` with their guards and events, and
``open_sessions_on``. On PostgreSQL: a promote committed while sessions are being opened
never leaves a session pinned to the version it retired."""

import asyncio
import time

import psycopg
import pytest

from acf.adapters.postgres.store import libpq_url
from acf.domain import state as state_contract
from acf.domain.config_versions import canary_arm
from acf.domain.errors import Conflict, StateContractError, VersionConflict
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.turns import TurnPhase
from acf.ports.config_versions import (
    PromoteVersion,
    RollbackLive,
    SetCanaryShare,
    StartCanary,
)
from acf.ports.dead_letters import DeadLetter, RecordDeadLetter, RequestReplay
from acf.ports.event_store import EventQuery
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import (
    CloseSession,
    ConsumeRange,
    RepinSession,
    SessionRecord,
    SessionStatus,
)
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key, turn
from tests.contract.test_config_versions import T, pushed, run

Opened = tuple[float, float, str]


async def session(store: Store, session_id: str) -> SessionRecord:
    found = await store.sessions.get(T, session_id)
    assert found is not None
    return found


async def open_new(store: Store, customer: str | None = None) -> SessionRecord:
    result = await append(store, key(tenant=T, customer=customer or new_id()))
    assert result.seq == 1  # a new session
    return await session(store, result.session_id)


async def test_assignment_at_open(store: Store) -> None:
    unpinned = await open_new(store)
    assert (unpinned.config_version, unpinned.canary, unpinned.closed_at_ms) == (None, False, None)
    await pushed(store, 3)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    live = await open_new(store)
    assert (live.config_version, live.canary) == (1, False)
    # A session keeps what it was assigned: the earlier one stays unpinned.
    assert (await session(store, unpinned.session_id)).config_version is None

    await run(store, StartCanary(T, 2, 0, 3_000, "ann"))
    assert {(s.config_version, s.canary) for s in [await open_new(store) for _ in range(5)]} == {
        (1, False)
    }
    await run(store, SetCanaryShare(T, 2, 100, 3_100, "all in"))
    assert {(s.config_version, s.canary) for s in [await open_new(store) for _ in range(5)]} == {
        (2, True)
    }

    await run(store, SetCanaryShare(T, 2, 50, 3_200, "half"))
    opened = [await open_new(store) for _ in range(40)]
    for s in opened:
        arm = canary_arm(s.session_id, 50)
        assert (s.config_version, s.canary) == ((2, True) if arm else (1, False))
    assert {s.canary for s in opened} == {True, False}  # both arms were drawn
    # Sticky: a new share, even a promote, leaves the opened sessions where they were.
    await run(store, SetCanaryShare(T, 2, 10, 3_300, "back off"))
    await run(store, PromoteVersion(T, 3, 3_400, "ann"))
    for s in opened:
        assert await session(store, s.session_id) == s
    assert (await open_new(store)).config_version == 3


async def test_open_sessions_on(store: Store) -> None:
    await pushed(store, 2)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    on_v1 = [(await open_new(store, f"c{n}")).session_id for n in range(3)]
    await run(store, PromoteVersion(T, 2, 3_000, "ann"))
    on_v2 = (await open_new(store, "c9")).session_id
    assert sorted(await store.config_versions.open_sessions_on(T, 1)) == sorted(on_v1)
    assert len(await store.config_versions.open_sessions_on(T, 1, limit=2)) == 2
    assert await store.config_versions.open_sessions_on(T, 2) == [on_v2]
    await store.uow.commit(
        T, [ConsumeRange(on_v1[0], 0, 1, True, 4_000), CloseSession(T, on_v1[0], 4_000, "idle", 0)]
    )
    assert sorted(await store.config_versions.open_sessions_on(T, 1)) == sorted(on_v1[1:])


async def test_repin_guards_the_pinned_version(store: Store) -> None:
    await pushed(store, 3)
    unpinned = await open_new(store)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    await run(store, StartCanary(T, 2, 100, 2_000, "ann"))
    s = await open_new(store)
    assert (s.config_version, s.canary) == (2, True)

    with pytest.raises(Conflict, match=f"session {s.session_id} is pinned to v2, not v1"):
        await run(store, RepinSession(T, s.session_id, 1, 3, "rollback", None, 3_000))
    with pytest.raises(Conflict, match="pinned to v2, not no version"):
        await run(store, RepinSession(T, s.session_id, None, 3, "rollback", None, 3_000))
    with pytest.raises(Conflict, match="no session nope"):
        await run(store, RepinSession(T, "nope", 2, 3, "rollback", None, 3_000))

    await run(store, RepinSession(T, s.session_id, 2, 1, "canary rolled back", None, 3_000))
    moved = await session(store, s.session_id)
    assert (moved.config_version, moved.canary, moved.state_version) == (1, False, 0)
    assert moved.state == s.state

    # With an upcaster's result the state is replaced (not merged) and its version bumped.
    await run(store, PromoteVersion(T, 3, 3_500, "ann"))
    upcast = state_contract.initial_state()
    upcast["slots"] = {"order": "A1"}
    with pytest.raises(VersionConflict, match="state is at version 0, not 7"):
        await run(store, RepinSession(T, s.session_id, 1, 3, "next_turn", upcast, 4_000, 7))
    await run(store, RepinSession(T, s.session_id, 1, 3, "next_turn", upcast, 4_000, 0))
    migrated = await session(store, s.session_id)
    assert (migrated.config_version, migrated.state_version) == (3, 1)
    assert migrated.state["slots"] == {"order": "A1"}
    with pytest.raises(VersionConflict, match="state is at version 1, not 0"):
        await run(store, RepinSession(T, s.session_id, 3, 1, "x", upcast, 5_000, 0))
    with pytest.raises(StateContractError):
        await run(store, RepinSession(T, s.session_id, 3, 1, "x", {"nonsense": 1}, 5_000))
    assert await session(store, s.session_id) == migrated

    await run(store, RepinSession(T, unpinned.session_id, None, 3, "first version", None, 6_000))
    assert (await session(store, unpinned.session_id)).config_version == 3

    await readable(store)
    events = await store.events.query(T, EventQuery(kinds=[EventKind.SESSION_REPINNED]))
    repinned = [(e.correlation.session_id, e.correlation.config_version) for e in events]
    assert repinned == [(s.session_id, "v1"), (s.session_id, "v3"), (unpinned.session_id, "v3")]
    assert [e.data for e in events] == [
        {"from": "v2", "to": "v1", "reason": "canary rolled back", "migrated": False},
        {"from": "v1", "to": "v3", "reason": "next_turn", "migrated": True},
        {"from": None, "to": "v3", "reason": "first version", "migrated": False},
    ]
    # The repin's event carries the trace of the message waiting for the next turn.
    assert events[0].correlation.trace_id == "trace-1"


async def test_repin_moves_a_session_only_to_the_live_version_now(store: Store) -> None:
    """The target is checked against the pointer in the repin's transaction, not against a
    process's cached view: a worker that has not yet learned of a promote (or a rollback)
    cannot move a session back to the version it retired, nor onto one rolled back."""
    await pushed(store, 3)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    on_v1 = await open_new(store)
    await run(store, PromoteVersion(T, 2, 2_100, "ann"))
    on_v2 = await open_new(store)
    assert (on_v1.config_version, on_v2.config_version) == (1, 2)

    # A stale worker (it still believes v1 is live, applied next_turn) moves v2 back: refused.
    with pytest.raises(Conflict, match="v1 is not the live version of t1 \\(live: v2\\)"):
        await run(store, RepinSession(T, on_v2.session_id, 2, 1, "next_turn", None, 3_000))
    upcast = state_contract.initial_state()
    with pytest.raises(Conflict, match="v3 is not the live version"):
        await run(store, RepinSession(T, on_v2.session_id, 2, 3, "next_turn", upcast, 3_000, 0))
    assert await session(store, on_v2.session_id) == on_v2  # nothing of it committed

    # After a rollback of v2, the way back to v1 is open, onto v2 is not.
    await run(store, RollbackLive(T, 3_100, "ann", "bad"))
    with pytest.raises(Conflict, match="v2 is not the live version of t1 \\(live: v1\\)"):
        await run(store, RepinSession(T, on_v1.session_id, 1, 2, "next_turn", None, 3_200))
    await run(store, RepinSession(T, on_v2.session_id, 2, 1, "rolled_back", None, 3_200))
    assert (await session(store, on_v2.session_id)).config_version == 1

    await readable(store)
    events = await store.events.query(T, EventQuery(kinds=[EventKind.SESSION_REPINNED]))
    assert [(e.correlation.session_id, e.data["to"]) for e in events] == [(on_v2.session_id, "v1")]


async def test_close_guards_and_the_next_message_opens_a_new_session(store: Store) -> None:
    await pushed(store, 2)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    k = key(tenant=T, customer="ann")
    first = await append(store, k, at_ms=2_500)
    sid = first.session_id
    close = CloseSession(T, sid, 10_000, "idle", 2_500)
    with pytest.raises(Conflict, match="unconsumed"):
        await store.uow.commit(T, [close])
    await store.uow.commit(T, [ConsumeRange(sid, 0, 1, True, 3_000)])
    live = turn(T, sid, from_seq=1, to_seq=1, phase=TurnPhase.ACCUMULATING)
    await store.uow.commit(T, [CreateTurn(live)])
    with pytest.raises(Conflict, match="live_turn"):
        await store.uow.commit(T, [close])
    assert (await session(store, sid)).status is SessionStatus.OPEN

    other = await append(store, key(tenant=T, customer="bob"), at_ms=2_500)
    await store.uow.commit(T, [ConsumeRange(other.session_id, 0, 1, True, 3_000)])
    await run(store, PromoteVersion(T, 2, 4_000, "ann"))
    await store.uow.commit(T, [CloseSession(T, other.session_id, 10_000, "idle", 3_000)])
    closed = await session(store, other.session_id)
    assert (closed.status, closed.closed_at_ms, closed.config_version) == (
        SessionStatus.CLOSED,
        10_000,
        1,
    )
    with pytest.raises(Conflict, match="closed"):
        await store.uow.commit(T, [CloseSession(T, other.session_id, 11_000, "idle", 3_000)])
    with pytest.raises(Conflict, match="no session nope"):
        await store.uow.commit(T, [CloseSession(T, "nope", 11_000, "idle", 3_000)])

    # The next message opens a new session, on the then-live version; the old one stays.
    again = await append(store, key(tenant=T, customer="bob"), at_ms=12_000)
    assert again.seq == 1 and again.session_id != other.session_id
    assert (await session(store, again.session_id)).config_version == 2
    assert (await session(store, other.session_id)).last_seq == 1

    await readable(store)
    events = await store.events.query(T, EventQuery(kinds=[EventKind.SESSION_CLOSED]))
    assert [(e.correlation.session_id, e.correlation.config_version, e.data) for e in events] == [
        (other.session_id, "v1", {"reason": "idle", "idle_since_ms": 3_000})
    ]


async def test_close_refuses_a_pending_reply_or_a_requested_replay(store: Store) -> None:
    """The idle scan's guards hold in the close's own transaction too: a reply queued or a
    replay requested after the sweep looked (a late fallback copy, the API) refuses it."""

    async def consumed(customer: str) -> str:
        appended = await append(store, key(tenant=T, customer=customer), at_ms=1_000)
        await store.uow.commit(T, [ConsumeRange(appended.session_id, 0, 1, True, 1_000)])
        return appended.session_id

    undelivered = await consumed("undelivered")
    await store.uow.commit(T, [EnqueueReply(undelivered, "turn-x", 0, {"text": "hi"}, 2_000)])
    replay = await consumed("replay")
    letter = DeadLetter(
        tenant=T,
        dead_letter_id="dl-1",
        session_id=replay,
        agent="support",
        turn_id="turn-dl",
        group_id="group-dl",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        pipeline="agent_service",
        error="503",
        attempts=3,
        created_at_ms=1_000,
        request={},
    )
    await store.uow.commit(T, [RecordDeadLetter(letter), RequestReplay("dl-1", 2_000)])
    for sid, reason in [(undelivered, "undelivered"), (replay, "replay")]:
        with pytest.raises(Conflict, match=f"^{reason}$"):
            await store.uow.commit(T, [CloseSession(T, sid, 10_000, "idle", 1_000)])
        assert (await session(store, sid)).status is SessionStatus.OPEN
    idle = await consumed("idle")
    await store.uow.commit(T, [CloseSession(T, idle, 10_000, "idle", 1_000)])
    assert (await session(store, idle)).status is SessionStatus.CLOSED


async def _open_many(store: Store, count: int, stagger_s: float = 0.0) -> list[Opened]:
    """Open ``count`` sessions at once (the i-th after ``i * stagger_s``): when each open
    began and returned, and its session id."""

    async def one(delay: float) -> Opened:
        await asyncio.sleep(delay)
        started = time.monotonic()
        result = await append(store, key(tenant=T, customer=new_id()))
        return started, time.monotonic(), result.session_id

    return list(await asyncio.gather(*(one(i * stagger_s) for i in range(count))))


@pytest.mark.backends("postgresql")
async def test_a_session_open_waits_for_a_promote_holding_the_pointer(
    store: Store, postgres_url: str
) -> None:
    """The opening transaction's pointer read (FOR SHARE) waits for a pointer change in
    progress (FOR UPDATE, as PromoteVersion takes it) and sees what it committed."""
    await pushed(store, 2)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    with psycopg.connect(libpq_url(postgres_url)) as conn:
        conn.execute("SELECT live FROM config_pointers WHERE tenant = %s FOR UPDATE", (T,))
        opening = asyncio.ensure_future(_open_many(store, 10))
        await asyncio.sleep(0.5)
        assert not opening.done()
        conn.execute(
            "UPDATE config_pointers SET live = 2, previous_live = 1 WHERE tenant = %s", (T,)
        )
        conn.commit()
    opened = await asyncio.wait_for(opening, 30)
    assert {(await session(store, sid)).config_version for _, _, sid in opened} == {2}


@pytest.mark.backends("postgresql")
async def test_a_promote_among_concurrent_opens_never_assigns_the_retired_version(
    store: Store,
) -> None:
    await pushed(store, 2)
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    versions: dict[str, int | None] = {}

    async def promote() -> tuple[float, float]:
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await run(store, PromoteVersion(T, 2, 3_000, "ann"))
        return started, time.monotonic()

    # 50 opens spread over ~100 ms, the promote in their midst.
    (p_started, p_done), opened = await asyncio.gather(promote(), _open_many(store, 50, 0.002))
    for _, _, sid in opened:
        versions[sid] = (await session(store, sid)).config_version
    assert set(versions.values()) <= {1, 2}
    # What the clock proves of the order of commits: an open that began after the promote
    # returned committed after it; one that returned before the promote began, before it.
    for started, done, sid in opened:
        if started > p_done:  # opened after the promote committed: never the retired v1
            assert versions[sid] == 2, sid
        if done < p_started:  # committed before the promote began
            assert versions[sid] == 1, sid
    pointer = await store.config_versions.pointer(T)
    assert pointer is not None and pointer.live == 2
