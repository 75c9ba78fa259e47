"""Contract: the recovery scan and the idle-close scan obey the session mode (issue 22).

Unconsumed messages are turn work only where a driver acts on them: agent mode, blocked
mode (a DROP turn consumes them) and a cool-down that has ended by the scan's time; a
session in human mode or a running cool-down is listed only for a live turn (to stand it
down) or its deliveries. The idle close lists agent-mode sessions only."""

from acf.domain.channels import Channel
from acf.domain.ids import new_id
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.firewall import BlockCustomer
from acf.ports.handoffs import EnterHuman, HandoffSource
from acf.ports.outbox import EnqueueReply
from acf.ports.recovery import SessionWork
from acf.ports.session_modes import StartCooldown
from acf.ports.session_store import ConsumeRange
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn, OpenGroup
from tests.contract.helpers import append, key, turn

COOLDOWN_UNTIL = 50_000


def found(work: list[SessionWork]) -> dict[str, tuple[bool, bool]]:
    return {w.session_id: (w.turns, w.deliveries) for w in work}


async def human(store: Store, session_id: str, at_ms: int = 2_000) -> None:
    await store.uow.commit(
        "t1", [EnterHuman("t1", session_id, "asked", HandoffSource.OPERATOR, at_ms, "tr")]
    )


async def cooldown(store: Store, session_id: str, until_ms: int = COOLDOWN_UNTIL) -> None:
    await store.uow.commit(
        "t1", [StartCooldown("t1", session_id, until_ms, "flood", "20/min", 2_000, "tr")]
    )


async def block(store: Store, customer: str) -> None:
    op = BlockCustomer("t1", new_id(), Channel.WHATSAPP, customer, "spam", "k1", 2_000, "tr")
    await store.uow.commit("t1", [op])


async def test_unconsumed_messages_are_work_only_where_a_driver_acts_on_them(
    store: Store,
) -> None:
    agent = (await append(store, key("t1", "agent"))).session_id
    handed = (await append(store, key("t1", "human"))).session_id
    await human(store, handed)
    held = (await append(store, key("t1", "held"))).session_id
    await cooldown(store, held)
    blocked = (await append(store, key("t1", "blocked"))).session_id
    await block(store, "blocked")
    for session_id in (handed, held):  # their messages keep arriving
        session = await store.sessions.get("t1", session_id)
        assert session is not None and session.has_unconsumed

    before_end = COOLDOWN_UNTIL - 1
    expected = {agent: (True, False), blocked: (True, False)}
    assert found(await store.recovery.sessions_with_work(now_ms=before_end)) == expected
    assert found(await store.recovery.sessions_with_work(unheld_at_ms=before_end)) == expected

    # The cool-down's end (by the scan's time, the store's clock) releases its messages.
    expected[held] = (True, False)
    assert found(await store.recovery.sessions_with_work(now_ms=COOLDOWN_UNTIL)) == expected
    assert found(await store.recovery.sessions_with_work(unheld_at_ms=COOLDOWN_UNTIL)) == expected
    # Without a time every cool-down is listed (its driver looks and idles): never lost.
    assert found(await store.recovery.sessions_with_work()) == expected


async def test_a_live_turn_or_a_delivery_is_listed_in_every_mode(store: Store) -> None:
    handed = await append(store, key("t1", "human"))
    await human(store, handed.session_id)
    live = turn("t1", handed.session_id, from_seq=0, to_seq=1, phase=TurnPhase.ACCUMULATING)
    group = TurnGroup("t1", live.group_id, handed.session_id, GroupStatus.OPEN, 0, 0, 1_000)
    await store.uow.commit("t1", [OpenGroup(group), CreateTurn(live)])  # left by a crash
    held = await append(store, key("t1", "held"))
    await cooldown(store, held.session_id)
    notice = EnqueueReply(held.session_id, "operator-x", 0, {"text": "wait"}, 2_000)
    await store.uow.commit("t1", [notice])
    assert found(await store.recovery.sessions_with_work(now_ms=3_000)) == {
        handed.session_id: (True, False),  # the live turn, to stand down
        held.session_id: (False, True),  # the notice
    }


async def test_the_idle_close_lists_agent_mode_sessions_only(store: Store) -> None:
    async def idle(customer: str) -> str:
        appended = await append(store, key("t1", customer), at_ms=900)
        consume = ConsumeRange(appended.session_id, 0, 1, True, 1_000)
        await store.uow.commit("t1", [consume])
        return appended.session_id

    agent = await idle("agent")
    handed = await idle("human")
    await human(store, handed, at_ms=1_000)
    held = await idle("held")
    await cooldown(store, held, until_ms=1_500)
    await idle("blocked")
    await block(store, "blocked")
    # Each is open, consumed, without a live turn, a reply or a replay: only its mode
    # keeps it out.
    listed = [s.session_id for s in await store.recovery.idle_sessions(10_000_000)]
    assert listed == [agent]
