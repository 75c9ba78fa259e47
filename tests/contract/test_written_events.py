"""The events an op writes itself (beside its rows) reach a unit's observers, as
``AppendEvent`` ops do: the metrics of a handoff or a cool-down, whose events their ops
write, depend on it. On every backend."""

import pytest

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent
from acf.ports.handoffs import EnterHuman, HandoffSource
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store
from acf.service.event_feed import ObservedUnitOfWork
from tests.contract.helpers import append, key, message


async def test_observers_see_the_events_ops_write_in_commit_order(store: Store) -> None:
    seen: list[list[FabricEvent]] = []
    uow = ObservedUnitOfWork(store.uow, [seen.append])
    first = await append(store, key("t1"), at_ms=1_000)
    note = AppendEvent(FabricEvent(EventKind.SESSION_FLAGGED, 2_000, Correlation("t1", "tr")))
    results = await uow.commit(
        "t1",
        [
            EnterHuman("t1", first.session_id, "angry", HandoffSource.PIPELINE, 2_000, "tr"),
            note,
            AppendMessage(message(key("t1"), "wamid.2"), 2_000, "tr"),
        ],
    )
    assert len(seen) == 1
    kinds = [e.kind for e in seen[0]]
    assert kinds == [
        EventKind.SESSION_HANDED_OFF,
        EventKind.SESSION_FLAGGED,
        EventKind.MESSAGE_RECEIVED,
    ]
    ids = [e.event_id for e in seen[0]]
    assert None not in ids and ids == sorted(ids)
    assert results.get(note) == ids[1]
    assert [e.kind for e in results.written_events] == [
        EventKind.SESSION_HANDED_OFF,
        EventKind.MESSAGE_RECEIVED,
    ]


async def test_a_refused_unit_shows_nothing(store: Store) -> None:
    seen: list[list[FabricEvent]] = []
    uow = ObservedUnitOfWork(store.uow, [seen.append])
    first = await append(store, key("t1"), at_ms=1_000)
    enter = EnterHuman("t1", first.session_id, "x", HandoffSource.PIPELINE, 2_000, "tr")
    with pytest.raises(Conflict):
        await uow.commit("t1", [enter, EnterHuman("t1", "no-such", "x", enter.source, 2_000, "tr")])
    assert seen == []
    # nothing of the refused unit was committed: the session can still be handed off
    assert (await store.uow.commit("t1", [enter])).get(enter) is not None
