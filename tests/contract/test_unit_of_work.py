"""Contract: UnitOfWork atomicity (DESIGN §3 invariant 5 at the store level)."""

import asyncio
from dataclasses import dataclass

import pytest

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, PatchState
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn
from acf.ports.unit_of_work import WriteOp
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key, message, turn


async def _snapshot(store: Store, session_id: str) -> tuple[object, ...]:
    session = await store.sessions.get("t1", session_id)
    assert session is not None
    await readable(store)
    return (
        session.state,
        session.state_version,
        session.consumed_seq,
        session.last_seq,
        await store.turns.list_turns("t1", session_id),
        await store.outbox.for_session("t1", session_id),
        len(await store.events.query("t1", EventQuery())),
    )


async def test_a_unit_failing_midway_leaves_nothing(store: Store) -> None:
    r = await append(store, key())
    before = await _snapshot(store, r.session_id)
    t = turn("t1", r.session_id)
    event = FabricEvent(EventKind.TURN_COMMITTED, 2_000, Correlation("t1", "tr", r.session_id))
    ops: list[WriteOp[object]] = [
        CreateTurn(t),
        PatchState(r.session_id, 0, {"slots": {"city": "London"}}, 2_000),
        EnqueueReply(r.session_id, t.turn_id, 0, {"text": "done"}, 2_000),
        AppendEvent(event),
        AppendMessage(message(key(), "late"), 2_000, "tr"),
        ConsumeRange(r.session_id, 0, 1, True, 2_000),  # fails: the message above is unseen
    ]
    with pytest.raises(Conflict, match="new_messages"):
        await store.uow.commit("t1", ops)
    assert await _snapshot(store, r.session_id) == before


async def test_an_exception_in_any_op_rolls_back_the_unit_only(store: Store) -> None:
    """Concurrent units share a physical transaction; one failing unit must not take the
    others down, nor leave any of its own writes."""
    r = await append(store, key())
    good = [PatchState(r.session_id, 0, {"slots": {"a": 1}}, 2_000)]
    bad = [
        EnqueueReply(r.session_id, "x", 0, {"text": "never"}, 2_000),
        PatchState(r.session_id, 99, {"slots": {"b": 1}}, 2_000),
    ]
    outcomes = await asyncio.gather(
        store.uow.commit("t1", bad), store.uow.commit("t1", good), return_exceptions=True
    )
    assert isinstance(outcomes[0], Exception)
    assert not isinstance(outcomes[1], Exception)
    assert await store.outbox.for_session("t1", r.session_id) == []
    session = await store.sessions.get("t1", r.session_id)
    assert session is not None and session.state["slots"] == {"a": 1}


async def test_unknown_op_is_refused_before_anything_runs(store: Store) -> None:
    @dataclass(frozen=True)
    class Bogus(WriteOp[None]):
        pass

    r = await append(store, key())
    with pytest.raises(TypeError, match="Bogus"):
        await store.uow.commit("t1", [PatchState(r.session_id, 0, {"data": {"x": 1}}, 1), Bogus()])
    session = await store.sessions.get("t1", r.session_id)
    assert session is not None and session.state_version == 0


async def test_many_concurrent_units_all_commit(store: Store) -> None:
    keys = [key(customer=f"c{i}") for i in range(200)]
    results = await asyncio.gather(*(append(store, k, f"p{i}") for i, k in enumerate(keys)))
    assert len({r.session_id for r in results}) == 200
    assert all(r.seq == 1 for r in results)
