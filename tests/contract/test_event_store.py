"""Contract: EventStore."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store
from tests.contract.helpers import key, message


def event(
    kind: EventKind, at_ms: int, session: str | None = "s1", tenant: str = "t1"
) -> FabricEvent:
    corr = Correlation(tenant, "trace", session, "turn", "group", "acf 0.1.0", "cfg")
    return FabricEvent(kind, at_ms, corr, {"n": at_ms})


async def test_ids_increase_and_resume_after_id(store: Store) -> None:
    ops = [AppendEvent(event(EventKind.TURN_STARTED, i)) for i in range(5)]
    results = await store.uow.commit("t1", ops)
    ids = [results.get(op) for op in ops]
    assert ids == sorted(ids) and len(set(ids)) == 5
    tail = await store.events.query("t1", EventQuery(after_id=ids[2]))
    assert [e.event_id for e in tail] == ids[3:]
    assert tail[0].correlation == ops[3].event.correlation
    assert tail[0].data == {"n": 3}


async def test_filters(store: Store) -> None:
    await store.uow.commit(
        "t1",
        [
            AppendEvent(event(EventKind.TURN_STARTED, 10)),
            AppendEvent(event(EventKind.TURN_COMMITTED, 20)),
            AppendEvent(event(EventKind.TURN_STARTED, 30, session="s2")),
        ],
    )
    by_kind = await store.events.query("t1", EventQuery(kinds=[EventKind.TURN_STARTED]))
    assert [e.at_ms for e in by_kind] == [10, 30]
    by_session = await store.events.query("t1", EventQuery(session_id="s2"))
    assert [e.at_ms for e in by_session] == [30]
    by_time = await store.events.query("t1", EventQuery(from_ms=15, to_ms=30))
    assert [e.at_ms for e in by_time] == [20]
    limited = await store.events.query("t1", EventQuery(limit=1))
    assert [e.at_ms for e in limited] == [10]


async def test_event_of_another_tenant_is_refused(store: Store) -> None:
    with pytest.raises(InvalidValue, match="cannot write tenant"):
        await store.uow.commit("t1", [AppendEvent(event(EventKind.TURN_STARTED, 1, tenant="t2"))])
    assert await store.events.query("t2", EventQuery()) == []


async def test_events_keep_their_order_among_the_other_writes_of_a_unit(store: Store) -> None:
    # Consecutive events are written together; one written by another op (a message's
    # message.received) still falls between the runs around it.
    first = [AppendEvent(event(EventKind.WINDOW_OPENED, i)) for i in (1, 2)]
    then = [AppendEvent(event(EventKind.TURN_STARTED, i)) for i in (3, 4, 5)]
    append = AppendMessage(message(key("t1")), 1_000, "trace")
    results = await store.uow.commit("t1", [*first, append, *then])
    stored = await store.events.query("t1", EventQuery())
    assert [(e.kind, e.at_ms) for e in stored] == [
        (EventKind.WINDOW_OPENED, 1),
        (EventKind.WINDOW_OPENED, 2),
        (EventKind.MESSAGE_RECEIVED, 1_000),
        (EventKind.TURN_STARTED, 3),
        (EventKind.TURN_STARTED, 4),
        (EventKind.TURN_STARTED, 5),
    ]
    assert [results.get(op) for op in (*first, *then)] == [
        e.event_id for e in stored if e.kind is not EventKind.MESSAGE_RECEIVED
    ]


async def test_a_run_of_events_with_one_of_another_tenant_writes_none(store: Store) -> None:
    ops = [
        AppendEvent(event(EventKind.TURN_STARTED, 1)),
        AppendEvent(event(EventKind.TURN_STARTED, 2, tenant="t2")),
    ]
    with pytest.raises(InvalidValue, match="cannot write tenant"):
        await store.uow.commit("t1", ops)
    assert await store.events.query("t1", EventQuery()) == []
