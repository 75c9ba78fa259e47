"""Contract: the recovery scanner finds every kind of work left behind, across tenants."""

from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn, OpenGroup
from tests.contract.helpers import append, key, turn


async def test_finds_unconsumed_live_turns_and_undelivered_rows(store: Store) -> None:
    assert await store.recovery.sessions_with_work() == []
    unconsumed = await append(store, key("t1", "a"))
    done = await append(store, key("t2", "b"))
    await store.uow.commit("t2", [ConsumeRange(done.session_id, 0, 1, True, 2_000)])
    assert [
        (w.tenant, w.session_id, w.turns, w.deliveries)
        for w in await store.recovery.sessions_with_work()
    ] == [("t1", unconsumed.session_id, True, False)]
    await store.uow.commit(
        "t2", [EnqueueReply(done.session_id, "turn-x", 0, {"text": "hi"}, 2_000)]
    )
    live = turn("t2", done.session_id, from_seq=1, to_seq=1, phase=TurnPhase.ACCUMULATING)
    group = TurnGroup("t2", live.group_id, done.session_id, GroupStatus.OPEN, 0, 0, 1_000)
    await store.uow.commit("t2", [OpenGroup(group), CreateTurn(live)])
    found = {
        (w.tenant, w.session_id): (w.turns, w.deliveries)
        for w in await store.recovery.sessions_with_work()
    }
    assert found == {
        ("t1", unconsumed.session_id): (True, False),
        ("t2", done.session_id): (True, True),
    }


async def test_limit(store: Store) -> None:
    for customer in "abc":
        await append(store, key("t1", customer))
    assert len(await store.recovery.sessions_with_work(limit=2)) == 2
