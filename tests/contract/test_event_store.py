"""Contract: EventStore.

Reads of events follow commit order (on PostgreSQL they stop below the oldest transaction
running on the server), so a test that reads what it just committed first waits until it
is readable (``readable``): another client of the shared server must not fail it.
"""

import pytest

from acf.adapters.postgres import PgStore
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sqlite.store import SqliteStore
from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import TenantId
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store
from tests.contract.event_horizon import readable
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
    await readable(store)
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
    await readable(store)
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
    await readable(store)
    assert await store.events.query("t2", EventQuery()) == []


async def test_events_keep_their_order_among_the_other_writes_of_a_unit(store: Store) -> None:
    # Consecutive events are written together; one written by another op (a message's
    # message.received) still falls between the runs around it.
    first = [AppendEvent(event(EventKind.WINDOW_OPENED, i)) for i in (1, 2)]
    then = [AppendEvent(event(EventKind.TURN_STARTED, i)) for i in (3, 4, 5)]
    append = AppendMessage(message(key("t1")), 1_000, "trace")
    results = await store.uow.commit("t1", [*first, append, *then])
    await readable(store)
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
    await readable(store)
    assert await store.events.query("t1", EventQuery()) == []


async def _delete_events_after(store: Store, tenant: TenantId, event_id: int) -> None:
    """What an operator's retention job might do (the runtime never deletes an event)."""
    assert isinstance(store, SqliteStore | PgStore)

    def delete(conn: SqlConnection) -> None:
        conn.execute("DELETE FROM events WHERE tenant = ? AND event_id > ?", (tenant, event_id))

    await store.db.write(tenant, delete)


async def test_an_id_is_never_given_again_once_its_event_is_deleted(store: Store) -> None:
    ops = [AppendEvent(event(EventKind.TURN_STARTED, i)) for i in range(3)]
    results = await store.uow.commit("t1", ops)
    ids = [results.get(op) for op in ops]
    await _delete_events_after(store, "t1", ids[0])

    later = AppendEvent(event(EventKind.TURN_STARTED, 3))
    new_id = (await store.uow.commit("t1", [later])).get(later)
    assert new_id > ids[-1]  # a stream that read up to ids[-1] still gets it
    await readable(store)
    tail = await store.events.query("t1", EventQuery(after_id=ids[-1]))
    assert [e.event_id for e in tail] == [new_id]


async def test_last_id_is_where_a_stream_starting_now_resumes(store: Store) -> None:
    assert await store.events.last_id("t1") == 0
    ops = [AppendEvent(event(EventKind.TURN_STARTED, i)) for i in range(3)]
    results = await store.uow.commit("t1", ops)
    await store.uow.commit("t2", [AppendEvent(event(EventKind.TURN_STARTED, 9, tenant="t2"))])
    await readable(store)
    assert await store.events.last_id("t1") == results.get(ops[-1])
    later = AppendEvent(event(EventKind.TURN_STARTED, 3))
    await store.uow.commit("t1", [later])
    await readable(store)
    after_now = await store.events.query("t1", EventQuery(after_id=results.get(ops[-1])))
    assert [e.at_ms for e in after_now] == [3]
