"""Contract: SessionStore with PatchState, ConsumeRange and FlagSession."""

import pytest

from acf.domain.errors import Conflict, StateContractError, VersionConflict
from acf.ports.session_store import (
    ConsumeRange,
    FlagSession,
    PatchState,
    SessionFilter,
    SessionStatus,
)
from acf.ports.store import Store
from tests.contract.helpers import append, key


async def test_first_message_opens_one_session_per_key(store: Store) -> None:
    k = key()
    r = await append(store, k)
    session = await store.sessions.find_open("t1", k)
    assert session is not None
    assert session.session_id == r.session_id
    assert session.status is SessionStatus.OPEN
    assert session.state["schema_version"] == 2
    assert session.state_version == 0
    other = await append(store, key(customer="someone else"))
    assert other.session_id != r.session_id


async def test_patch_state_is_optimistic(store: Store) -> None:
    r = await append(store, key())
    first = PatchState(r.session_id, 0, {"slots": {"order": "123"}}, 2_000)
    assert (await store.uow.commit("t1", [first])).get(first) == 1
    with pytest.raises(VersionConflict):
        await store.uow.commit("t1", [PatchState(r.session_id, 0, {"slots": {"x": 1}}, 2_001)])
    session = await store.sessions.get("t1", r.session_id)
    assert session is not None
    assert session.state_version == 1
    assert session.state["slots"] == {"order": "123"}


async def test_patch_state_rejects_a_result_breaking_the_contract(store: Store) -> None:
    r = await append(store, key())
    with pytest.raises(StateContractError, match="meta"):
        await store.uow.commit(
            "t1", [PatchState(r.session_id, 0, {"meta": {"sticky_until_ms": 5}}, 2_000)]
        )
    session = await store.sessions.get("t1", r.session_id)
    assert session is not None and session.state_version == 0


async def test_consume_range_guards(store: Store) -> None:
    k = key()
    for i in range(3):
        r = await append(store, k, f"m{i}")
    sid = r.session_id
    with pytest.raises(Conflict, match="new_messages"):
        await store.uow.commit("t1", [ConsumeRange(sid, 0, 2, True, 3_000)])
    with pytest.raises(Conflict, match="range"):
        await store.uow.commit("t1", [ConsumeRange(sid, 0, 4, False, 3_000)])
    with pytest.raises(Conflict, match="consumed_seq"):
        await store.uow.commit("t1", [ConsumeRange(sid, 1, 3, True, 3_000)])
    await store.uow.commit("t1", [ConsumeRange(sid, 0, 2, False, 3_000)])
    await store.uow.commit("t1", [ConsumeRange(sid, 2, 3, True, 3_001)])
    session = await store.sessions.get("t1", sid)
    assert session is not None and session.consumed_seq == 3 and not session.has_unconsumed


async def test_flag_and_filter(store: Store) -> None:
    a = await append(store, key(customer="a"), at_ms=1_000)
    b = await append(store, key(customer="b"), at_ms=2_000)
    await store.uow.commit("t1", [FlagSession(a.session_id, True, "fallback sent", 3_000)])
    flagged = await store.sessions.list_sessions("t1", SessionFilter(flagged=True))
    assert [s.session_id for s in flagged] == [a.session_id]
    assert flagged[0].flag_reason == "fallback sent"
    everyone = await store.sessions.list_sessions("t1")
    assert [s.session_id for s in everyone] == [a.session_id, b.session_id]
    by_customer = await store.sessions.list_sessions("t1", SessionFilter(customer="b"))
    assert [s.session_id for s in by_customer] == [b.session_id]
    with pytest.raises(Conflict):
        await store.uow.commit("t1", [FlagSession("nope", True, None, 1)])


async def test_the_pending_trace_is_the_oldest_unconsumed_messages(store: Store) -> None:
    k = key()
    first = await append(store, k, "m1", trace_id="trace-a")
    await append(store, k, "m2", trace_id="trace-b")
    sid = first.session_id
    session = await store.sessions.get("t1", sid)
    assert session is not None and session.pending_trace_id == "trace-a"
    await store.uow.commit("t1", [ConsumeRange(sid, 0, 1, False, 2_000)])  # QUEUE: m2 waits
    session = await store.sessions.get("t1", sid)
    assert session is not None and session.pending_trace_id == "trace-b"
    await store.uow.commit("t1", [ConsumeRange(sid, 1, 2, True, 3_000)])
    session = await store.sessions.get("t1", sid)
    assert session is not None and session.pending_trace_id is None
    await append(store, k, "m3", trace_id="trace-c")
    session = await store.sessions.get("t1", sid)
    assert session is not None and session.pending_trace_id == "trace-c"
