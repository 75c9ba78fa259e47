"""Contract: the idle-close scan lists open sessions with nothing left to do, idle since a
time, across tenants, longest idle first, and pages on."""

from acf.domain.channels import Channel
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.dead_letters import DeadLetter, RecordDeadLetter, RequestReplay
from acf.ports.outbox import EnqueueReply
from acf.ports.recovery import IdleSession
from acf.ports.session_store import ConsumeRange
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn, OpenGroup
from tests.contract.helpers import append, key, turn


async def consumed(store: Store, tenant: str, customer: str, at_ms: int) -> str:
    """A session whose one message was consumed at ``at_ms`` (its last activity)."""
    k = key(tenant, customer)
    appended = await append(store, k, at_ms=at_ms - 10)
    await store.uow.commit(tenant, [ConsumeRange(appended.session_id, 0, 1, True, at_ms)])
    return appended.session_id


async def test_lists_idle_sessions_across_tenants_longest_idle_first(store: Store) -> None:
    assert await store.recovery.idle_sessions(10_000) == []
    b = await consumed(store, "t2", "b", 2_000)
    a = await consumed(store, "t1", "a", 1_000)
    await consumed(store, "t1", "young", 9_000)
    found = await store.recovery.idle_sessions(5_000)
    assert found == [
        IdleSession("t1", a, "support", Channel.WHATSAPP, 1_000),
        IdleSession("t2", b, "support", Channel.WHATSAPP, 2_000),
    ]
    # At the boundary: idle since exactly the time counts.
    assert [s.session_id for s in await store.recovery.idle_sessions(1_000)] == [a]


async def test_pages_with_the_cursor(store: Store) -> None:
    ids = [await consumed(store, "t1", f"c{i}", 1_000 + i) for i in range(5)]
    first = await store.recovery.idle_sessions(10_000, limit=2)
    assert [s.session_id for s in first] == ids[:2]
    second = await store.recovery.idle_sessions(10_000, limit=2, after=first[-1].cursor)
    assert [s.session_id for s in second] == ids[2:4]
    last = await store.recovery.idle_sessions(10_000, limit=2, after=second[-1].cursor)
    assert [s.session_id for s in last] == ids[4:]


async def test_leaves_out_sessions_with_something_left(store: Store) -> None:
    idle = await consumed(store, "t1", "idle", 1_000)
    unconsumed = (await append(store, key("t1", "unconsumed"), at_ms=1_000)).session_id
    live = await consumed(store, "t1", "live", 1_000)
    running = turn("t1", live, from_seq=1, to_seq=1, phase=TurnPhase.ACCUMULATING)
    group = TurnGroup("t1", running.group_id, live, GroupStatus.OPEN, 0, 0, 1_000)
    await store.uow.commit("t1", [OpenGroup(group), CreateTurn(running)])
    undelivered = await consumed(store, "t1", "undelivered", 1_000)
    # An outbox row's own time is no session activity; the pending row alone holds it.
    await store.uow.commit("t1", [EnqueueReply(undelivered, "turn-x", 0, {"text": "hi"}, 1_000)])
    replay = await consumed(store, "t1", "replay", 1_000)
    letter = DeadLetter(
        tenant="t1",
        dead_letter_id="dl-1",
        session_id=replay,
        agent="support",
        turn_id="turn-dl",
        group_id="group-dl",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        pipeline="agent_service",
        error="503",
        attempts=3,
        created_at_ms=1_000,
        request={},
    )
    await store.uow.commit("t1", [RecordDeadLetter(letter), RequestReplay("dl-1", 1_000)])
    found = {s.session_id for s in await store.recovery.idle_sessions(50_000)}
    assert idle in found
    assert not found & {unconsumed, live, undelivered, replay}
