"""Contract: EventStore."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.store import Store


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
