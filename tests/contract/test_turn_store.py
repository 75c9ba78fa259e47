"""Contract: TurnStore, turn groups, the irreversible gate and turn records."""

import dataclasses

import pytest

from acf.domain.errors import Conflict
from acf.domain.events import Correlation
from acf.domain.records import TurnRecord
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.store import Store
from acf.ports.turn_store import (
    CreateTurn,
    MarkIrreversibleStarted,
    MoveTurn,
    OpenGroup,
    SaveTurnRecord,
    UpdateGroup,
)
from acf.testing import VirtualClock
from tests.contract.helpers import append, key, turn


async def test_one_live_turn_per_session(store: Store) -> None:
    r = await append(store, key())
    assert await store.lease.acquire("t1", r.session_id, "w", 60_000) is not None
    first = turn("t1", r.session_id)
    await store.uow.commit("t1", [CreateTurn(first)])
    assert await store.turns.get("t1", first.turn_id) == first
    assert await store.turns.live_turn("t1", r.session_id) == first
    with pytest.raises(Conflict, match="live_turn"):
        await store.uow.commit("t1", [CreateTurn(turn("t1", r.session_id))])
    await store.uow.commit(
        "t1", [MoveTurn(first.turn_id, TurnPhase.RUNNING, TurnPhase.COMMITTED, 1, 2_000)]
    )
    assert await store.turns.live_turn("t1", r.session_id) is None
    second = turn("t1", r.session_id, from_seq=1, to_seq=1)
    await store.uow.commit("t1", [CreateTurn(second)])
    listed = await store.turns.list_turns("t1", r.session_id)
    assert [t.turn_id for t in listed] == [first.turn_id, second.turn_id]


async def test_move_turn_is_compare_and_set(store: Store, clock: VirtualClock) -> None:
    r = await append(store, key())
    assert await store.lease.acquire("t1", r.session_id, "w", 60_000) is not None
    t = turn("t1", r.session_id, phase=TurnPhase.ACCUMULATING, fence=1)
    await store.uow.commit("t1", [CreateTurn(t)])
    with pytest.raises(Conflict):  # wrong fence
        await store.uow.commit(
            "t1", [MoveTurn(t.turn_id, TurnPhase.ACCUMULATING, TurnPhase.RUNNING, 9, 2_000)]
        )
    with pytest.raises(Conflict):  # wrong expected phase
        await store.uow.commit(
            "t1", [MoveTurn(t.turn_id, TurnPhase.RUNNING, TurnPhase.COMMITTED, 1, 2_000)]
        )
    with pytest.raises(Conflict, match="cannot move"):  # not an arrow of DESIGN §4
        await store.uow.commit(
            "t1", [MoveTurn(t.turn_id, TurnPhase.ACCUMULATING, TurnPhase.COMMITTED, 1, 2_000)]
        )
    with pytest.raises(Conflict):  # new fence 5 is not the lease's fence
        await store.uow.commit(
            "t1",
            [MoveTurn(t.turn_id, TurnPhase.ACCUMULATING, TurnPhase.RUNNING, 1, 2_000, new_fence=5)],
        )
    clock.advance(60_000)  # the lease (fence 1) expires; a new holder gets fence 2
    lease = await store.lease.acquire("t1", r.session_id, "w2", 60_000)
    assert lease is not None and lease.fence == 2
    with pytest.raises(Conflict):  # the old holder can no longer move the turn
        await store.uow.commit(
            "t1",
            [MoveTurn(t.turn_id, TurnPhase.ACCUMULATING, TurnPhase.RUNNING, 1, clock.now_ms())],
        )
    await store.uow.commit(
        "t1",
        [
            MoveTurn(
                t.turn_id,
                TurnPhase.ACCUMULATING,
                TurnPhase.RUNNING,
                1,
                2_000,
                to_seq=1,
                new_attempt=2,
                new_fence=2,
            )
        ],
    )
    moved = await store.turns.get("t1", t.turn_id)
    assert moved is not None
    assert (moved.phase, moved.attempt, moved.fence, moved.updated_at_ms) == (
        TurnPhase.RUNNING,
        2,
        2,
        2_000,
    )


async def test_irreversible_gate(store: Store, clock: VirtualClock) -> None:
    k = key()
    r = await append(store, k)
    for _ in range(3):  # fence 3
        clock.advance(1_000)
        assert await store.lease.acquire("t1", r.session_id, "w", 1_000) is not None
    t = turn("t1", r.session_id, from_seq=0, to_seq=1, fence=3)
    await store.uow.commit("t1", [CreateTurn(t)])
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 2, False, clock.now_ms())])
    await append(store, k, "newer")  # last_seq = 2 > to_seq
    with pytest.raises(Conflict, match="new_messages"):
        await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 3, False, clock.now_ms())])
    gated = await store.turns.get("t1", t.turn_id)
    assert gated is not None and not gated.irreversible_started
    await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 3, True, clock.now_ms())])
    gated = await store.turns.get("t1", t.turn_id)
    assert gated is not None and gated.irreversible_started


async def test_gate_refuses_a_stale_holder(store: Store, clock: VirtualClock) -> None:
    r = await append(store, key())
    old = await store.lease.acquire("t1", r.session_id, "old", 1_000)
    assert old is not None
    t = turn("t1", r.session_id, fence=1)
    await store.uow.commit("t1", [CreateTurn(t)])
    await store.lease.release(old)  # given up (a pipeline that ignored cancellation): refused
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 1, False, clock.now_ms())])
    assert await store.lease.acquire("t1", r.session_id, "new", 1_000) is not None
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 1, True, clock.now_ms())])
    gated = await store.turns.get("t1", t.turn_id)
    assert gated is not None and not gated.irreversible_started


async def test_gate_refuses_a_turn_not_running(store: Store) -> None:
    r = await append(store, key())
    assert await store.lease.acquire("t1", r.session_id, "w", 60_000) is not None
    t = turn("t1", r.session_id, phase=TurnPhase.ACCUMULATING)
    await store.uow.commit("t1", [CreateTurn(t)])
    with pytest.raises(Conflict, match="phase"):
        await store.uow.commit("t1", [MarkIrreversibleStarted(t.turn_id, 1, False, 2_000)])


async def test_groups(store: Store) -> None:
    r = await append(store, key())
    g = TurnGroup("t1", "g1", r.session_id, GroupStatus.OPEN, 0, 1, 1_000)
    await store.uow.commit("t1", [OpenGroup(g), OpenGroup(g)])
    assert await store.turns.get_group("t1", "g1") == g
    await store.uow.commit("t1", [UpdateGroup("g1", GroupStatus.COMMITTED, 2, 3)])
    assert await store.turns.get_group("t1", "g1") == dataclasses.replace(
        g, status=GroupStatus.COMMITTED, restarts=2, attempts=3
    )
    with pytest.raises(Conflict, match="group"):  # closed groups stay closed
        await store.uow.commit("t1", [UpdateGroup("g1", GroupStatus.OPEN, 0, 0)])


async def test_turn_record_round_trip_and_once_only(store: Store) -> None:
    record = TurnRecord(
        correlation=Correlation("t1", "trace", "s1", "turn1", "g1", "acf 0.1.0", "cfg-abc"),
        outcome=TurnPhase.COMMITTED,
        from_seq=0,
        to_seq=2,
        attempt=1,
        started_at_ms=1_000,
        ended_at_ms=1_500,
        replies=("hi",),
        state_version_before=0,
        state_version_after=1,
        timings_ms={"pipeline": 400},
        details={"lane": "support"},
    )
    await store.uow.commit("t1", [SaveTurnRecord(record)])
    assert await store.turns.get_record("t1", "turn1") == record
    with pytest.raises(Conflict, match="record_exists"):
        await store.uow.commit("t1", [SaveTurnRecord(record)])
