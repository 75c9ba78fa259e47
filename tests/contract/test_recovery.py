"""Contract: the recovery scanner finds every kind of work left behind, across tenants."""

from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.lease import delivery_lease_id
from acf.ports.outbox import EnqueueReply
from acf.ports.recovery import SessionWork
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


async def test_unheld_work_leaves_out_sessions_someone_holds(store: Store) -> None:
    held = await append(store, key("t1", "a"))
    free = await append(store, key("t1", "b"))
    await store.uow.commit(
        "t1", [EnqueueReply(free.session_id, "turn-x", 0, {"text": "hi"}, 1_000)]
    )
    lease = await store.lease.acquire("t1", held.session_id, "w1", 5_000)
    assert lease is not None
    relay = await store.lease.acquire("t1", delivery_lease_id(free.session_id), "w2", 5_000)
    assert relay is not None

    def found(work: list[SessionWork]) -> dict[str, tuple[bool, bool]]:
        return {w.session_id: (w.turns, w.deliveries) for w in work}

    now = lease.expires_at_ms - 1
    assert found(await store.recovery.sessions_with_work(unheld_at_ms=now)) == {
        free.session_id: (True, False)  # its turns are free; its relay is held
    }
    later = lease.expires_at_ms
    assert found(await store.recovery.sessions_with_work(unheld_at_ms=later)) == {
        held.session_id: (True, False),
        free.session_id: (True, True),
    }
    # Without a time, everything with work (start-up recovery).
    assert set(found(await store.recovery.sessions_with_work())) == {
        held.session_id,
        free.session_id,
    }
