"""Contract: a session's latest event of some kinds (``EventQuery.newest_first``), the read a
worker makes for the customer's last typing signal (hold-while-typing, distributed mode:
the signal reached an API process, which stored it).

A lookup (``in_commit_order=False``): it sees every event committed by now, so these tests
need no wait for the event horizon. It reads through the partial index on typing signals
(``ix_events_typing``, revision 0012) on both backends.
"""

from acf.adapters.postgres.store import PgStore
from acf.adapters.sql.events import kinds_predicate, select_events
from acf.adapters.sql.schema import TYPING_EVENTS
from acf.adapters.sqlite.store import SqliteStore
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.store import Store

TYPING = (EventKind.TYPING_STARTED, EventKind.TYPING_STOPPED)


def event(kind: EventKind, at_ms: int, session: str = "s1", tenant: str = "t1") -> AppendEvent:
    return AppendEvent(FabricEvent(kind, at_ms, Correlation(tenant, "trace", session)))


def latest(session: str = "s1", limit: int = 1) -> EventQuery:
    return EventQuery(
        session_id=session, kinds=TYPING, limit=limit, in_commit_order=False, newest_first=True
    )


async def test_the_latest_typing_signal_of_the_session(store: Store) -> None:
    await store.uow.commit(
        "t1",
        [
            event(EventKind.TYPING_STARTED, 100),
            event(EventKind.TYPING_STARTED, 2_100),
            event(EventKind.TYPING_STOPPED, 3_000),
            event(EventKind.TYPING_STARTED, 3_500),
            event(EventKind.TURN_STARTED, 4_000),  # newer, of another kind
            event(EventKind.TYPING_STOPPED, 5_000, session="s2"),  # another session
        ],
    )
    await store.uow.commit("t2", [event(EventKind.TYPING_STOPPED, 6_000, tenant="t2")])
    (found,) = await store.events.query("t1", latest())
    assert (found.kind, found.at_ms) == (EventKind.TYPING_STARTED, 3_500)
    assert found.correlation.session_id == "s1"
    (other,) = await store.events.query("t1", latest("s2"))
    assert (other.kind, other.at_ms) == (EventKind.TYPING_STOPPED, 5_000)


async def test_newest_first_orders_by_id_descending(store: Store) -> None:
    await store.uow.commit("t1", [event(EventKind.TYPING_STARTED, at) for at in (1, 2, 3, 4)])
    # A later unit with an older timestamp: the order is the events' (ids), not at_ms.
    await store.uow.commit("t1", [event(EventKind.TYPING_STOPPED, 0)])
    found = await store.events.query("t1", latest(limit=3))
    assert [e.at_ms for e in found] == [0, 4, 3]
    ids = [e.event_id or 0 for e in found]
    assert ids == sorted(ids, reverse=True) and 0 not in ids


async def test_no_signal_is_nothing(store: Store) -> None:
    await store.uow.commit("t1", [event(EventKind.TURN_STARTED, 1)])
    assert await store.events.query("t1", latest()) == []
    await store.uow.commit("t2", [event(EventKind.TYPING_STARTED, 2, tenant="t2")])
    assert await store.events.query("t1", latest()) == []  # another tenant's is not ours


def test_the_query_names_the_typing_kinds_as_the_index_does() -> None:
    """SQLite uses a partial index only for a WHERE term written as its predicate is
    (literals, in the same order); a bound parameter or another order falls back to
    ``ix_events_session``, which walks the session's events backwards."""
    assert kinds_predicate(TYPING) == TYPING_EVENTS
    assert kinds_predicate(tuple(reversed(TYPING))) == TYPING_EVENTS
    assert kinds_predicate((EventKind.TYPING_STOPPED,)) == "kind IN ('typing.stopped')"


async def test_the_lookup_reads_the_typing_index(store: Store, backend: str) -> None:
    """A session with many events and no typing signal: the latest-typing lookup is one
    probe of ``ix_events_typing``, not a walk through the session's events."""
    busy = [event(EventKind.TURN_STARTED, at) for at in range(300)]
    await store.uow.commit("t1", busy)
    assert isinstance(store, SqliteStore | PgStore)
    db = store.db
    statement, args = select_events(db.dialect, "t1", latest())
    explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    plan = await db.read(
        "t1", lambda conn: [str(r) for r in conn.execute(explain + statement, args)]
    )
    assert "ix_events_typing" in "\n".join(plan)
    assert await store.events.query("t1", latest()) == []
