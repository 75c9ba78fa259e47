"""Contract: a session's latest event of some kinds (``EventQuery.newest_first``), the read a
worker makes for the customer's last typing signal (hold-while-typing, distributed mode:
the signal reached an API process, which stored it).

A lookup (``in_commit_order=False``): it sees every event committed by now, so these tests
need no wait for the event horizon.
"""

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
