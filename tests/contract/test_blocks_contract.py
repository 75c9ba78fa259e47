"""The block list (``BlockCustomer``, ``LiftBlock``, the ``Blocks`` reader) on both
backends, and the ``held`` answer of ``AppendMessage``:

- a block moves every open session of the customer on the channel (every agent's) to
  ``blocked`` (``mode_reason`` ``block:<id>``), leaves other channels and customers alone,
  and writes ``customer.blocked``; a second active block is ``Conflict("blocked")``
  (or, asked ``existing_ok``, the active one back with nothing changed);
- an expired block not yet lifted gives way to a new one (lifted as ``expiry``);
- lifting moves the blocked sessions back to the mode the block interrupted (``human``
  with an open handoff, ``cooldown`` until it ends, else ``agent``) and writes
  ``customer.unblocked``;
  lifting twice, or an unknown block, is ``Conflict("not_found")``;
- the reader lists newest first, unlifted only unless asked, and the expired ones;
- a message to a session not in agent mode is stored, says ``held`` and its
  ``message.received`` event carries it.
"""

import pytest

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode
from acf.ports.event_store import EventQuery
from acf.ports.firewall import Block, BlockCustomer, LiftBlock
from acf.ports.handoffs import ClaimHandoff, EnterHuman, HandoffSource, Operator
from acf.ports.session_modes import StartCooldown
from acf.ports.store import Store
from acf.testing import VirtualClock
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key

CUSTOMER = "whatsapp:+15550001"


def block_op(
    block_id: str | None = None,
    *,
    customer: str = CUSTOMER,
    channel: Channel = Channel.WHATSAPP,
    at_ms: int = 2_000,
    expires_at_ms: int | None = None,
    existing_ok: bool = False,
) -> BlockCustomer:
    return BlockCustomer(
        "t1",
        block_id or new_id(),
        channel,
        customer,
        reason="abusive",
        created_by="key-1",
        at_ms=at_ms,
        trace_id="trace-b",
        expires_at_ms=expires_at_ms,
        existing_ok=existing_ok,
    )


async def commit_block(store: Store, op: BlockCustomer) -> Block:
    return (await store.uow.commit("t1", [op])).get(op)


async def lift(store: Store, block_id: str, at_ms: int = 3_000, by: str = "key-2") -> Block:
    op = LiftBlock("t1", block_id, by, at_ms, "trace-l")
    return (await store.uow.commit("t1", [op])).get(op)


async def mode(store: Store, session_id: str) -> SessionMode:
    record = await store.sessions.get("t1", session_id)
    assert record is not None
    return record.mode


async def test_a_block_moves_the_customers_open_sessions_to_blocked(store: Store) -> None:
    support = (await append(store, key())).session_id
    sales = (await append(store, key(agent="sales"))).session_id
    other_channel = (await append(store, key(channel=Channel.SMS))).session_id
    other_customer = (await append(store, key(customer="whatsapp:+15550002"))).session_id

    block = await commit_block(store, block_op("b1"))

    assert block.block_id == "b1" and block.active_at(2_000)
    for session_id in (support, sales):
        record = await store.sessions.get("t1", session_id)
        assert record is not None
        assert (record.mode, record.mode_reason, record.mode_since_ms) == (
            SessionMode.BLOCKED,
            "block:b1",
            2_000,
        )
    assert await mode(store, other_channel) is SessionMode.AGENT
    assert await mode(store, other_customer) is SessionMode.AGENT
    await readable(store)
    (event,) = await store.events.query("t1", EventQuery(kinds=[EventKind.CUSTOMER_BLOCKED]))
    assert event.data["block_id"] == "b1" and event.data["by"] == "key-1"
    assert sorted(event.data["sessions"]) == sorted([support, sales])
    assert event.correlation.trace_id == "trace-b"


async def test_one_active_block_per_customer_and_channel(store: Store) -> None:
    await commit_block(store, block_op("b1"))
    with pytest.raises(Conflict) as refused:
        await commit_block(store, block_op("b2"))
    assert refused.value.reason == "blocked"
    assert await store.blocks.get("t1", "b2") is None

    kept = await commit_block(store, block_op("b3", existing_ok=True))
    assert kept.block_id == "b1"
    assert [b.block_id for b in await store.blocks.list_blocks("t1")] == ["b1"]
    # another channel is another block
    assert (await commit_block(store, block_op("b4", channel=Channel.SMS))).block_id == "b4"


async def test_an_expired_block_gives_way_to_a_new_one(store: Store) -> None:
    await commit_block(store, block_op("old", at_ms=1_000, expires_at_ms=1_500))
    block = await commit_block(store, block_op("new", at_ms=2_000))
    assert block.block_id == "new"
    old = await store.blocks.get("t1", "old")
    assert old is not None and (old.lifted_at_ms, old.lifted_by) == (2_000, "expiry")


async def test_lifting_moves_blocked_sessions_back_to_agent(store: Store) -> None:
    session_id = (await append(store, key())).session_id
    await commit_block(store, block_op("b1"))
    lifted = await lift(store, "b1")
    assert (lifted.lifted_at_ms, lifted.lifted_by) == (3_000, "key-2")
    assert not lifted.active_at(3_000)
    record = await store.sessions.get("t1", session_id)
    assert record is not None
    assert (record.mode, record.mode_reason) == (SessionMode.AGENT, None)
    await readable(store)
    (event,) = await store.events.query("t1", EventQuery(kinds=[EventKind.CUSTOMER_UNBLOCKED]))
    assert event.data["sessions"] == [session_id] and event.correlation.session_id == session_id

    for block_id in ("b1", "unknown"):
        with pytest.raises(Conflict) as refused:
            await lift(store, block_id)
        assert refused.value.reason == "not_found"
    # lifted: the customer can be blocked again
    assert (await commit_block(store, block_op("b2", at_ms=4_000))).block_id == "b2"


async def test_a_lift_restores_the_mode_the_block_interrupted(store: Store) -> None:
    handed = (await append(store, key())).session_id
    cooling = (await append(store, key(agent="sales"))).session_id
    ended = (await append(store, key(agent="billing"))).session_id
    enter = EnterHuman("t1", handed, "asked", HandoffSource.PIPELINE, 1_500, "tr")
    cool = [
        StartCooldown("t1", cooling, 10_000, "flood", "x", 1_500, "tr"),
        StartCooldown("t1", ended, 2_500, "flood", "x", 1_500, "tr"),
    ]
    await store.uow.commit("t1", [enter, *cool])
    await commit_block(store, block_op("b1"))
    for session_id in (handed, cooling, ended):
        assert await mode(store, session_id) is SessionMode.BLOCKED

    await lift(store, "b1", at_ms=3_000)

    back = await store.sessions.get("t1", handed)
    assert back is not None and (back.mode, back.mode_reason) == (SessionMode.HUMAN, "asked")
    assert back.mode_until_ms is None
    claim = ClaimHandoff("t1", handed, Operator("k1", "Alice"), 60_000, 3_000, "tr")
    assert (await store.uow.commit("t1", [claim])).get(claim).claimed_by == "k1"  # claimable
    held = await store.sessions.get("t1", cooling)
    assert held is not None and (held.mode, held.mode_until_ms) == (SessionMode.COOLDOWN, 10_000)
    over = await store.sessions.get("t1", ended)
    assert over is not None and (over.mode, over.mode_until_ms) == (SessionMode.AGENT, None)
    await readable(store)
    (event,) = await store.events.query("t1", EventQuery(kinds=[EventKind.CUSTOMER_UNBLOCKED]))
    assert event.data["modes"] == {
        handed: "human",
        cooling: "cooldown",
        ended: "agent",
    }


async def test_the_reader(store: Store, clock: VirtualClock) -> None:
    await commit_block(store, block_op("b1", customer="a", at_ms=1_000))
    await commit_block(store, block_op("b2", customer="b", at_ms=2_000, expires_at_ms=5_000))
    await commit_block(store, block_op("b3", customer="c", at_ms=3_000))
    await lift(store, "b3", at_ms=4_000)

    assert [b.block_id for b in await store.blocks.list_blocks("t1")] == ["b2", "b1"]
    listed = await store.blocks.list_blocks("t1", include_lifted=True)
    assert [b.block_id for b in listed] == ["b3", "b2", "b1"]
    assert [b.block_id for b in await store.blocks.list_blocks("t1", limit=1)] == ["b2"]

    active = await store.blocks.active("t1", Channel.WHATSAPP, "b")
    assert active is not None and active.block_id == "b2" and active.expires_at_ms == 5_000
    assert await store.blocks.active("t1", Channel.WHATSAPP, "c") is None
    assert await store.blocks.active("t1", Channel.SMS, "a") is None

    assert await store.blocks.expired("t1", 4_999) == []
    assert [b.block_id for b in await store.blocks.expired("t1", 5_000)] == ["b2"]
    assert await store.blocks.get("t2", "b1") is None  # another tenant's


async def test_a_message_to_a_held_session_says_held(store: Store) -> None:
    first = await append(store, key())
    assert first.held is None
    await commit_block(store, block_op("b1"))

    held = await append(store, key(), provider_id="m2")
    assert (held.held, held.session_id, held.seq) == ("blocked", first.session_id, 2)
    again = await append(store, key(), provider_id="m2")  # a re-delivery says it too
    assert again.duplicate and again.held == "blocked"

    await readable(store)
    events = await store.events.query(
        "t1", EventQuery(session_id=first.session_id, kinds=[EventKind.MESSAGE_RECEIVED])
    )
    assert [e.data.get("held") for e in events] == [None, "blocked"]
