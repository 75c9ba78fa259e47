"""A blocked customer's messages are stored, shown and dropped by DROP turns (issue 22), on
the embedded runtime and the virtual clock: nothing is sent; each DROP turn is COMMITTED
with kind ``drop`` over the unconsumed range (invariant 1 holds: every message lies in one
committed range), its record has category ABUSE_SUSPECTED and no configuration version,
``abuse.messages_dropped`` names the range and the block; a window open when the block lands
stands down first; the mode watch lifts a block that expired, and the agent answers again.
The block is the store's own op (``BlockCustomer``), as the firewall and the API commit it."""

from pathlib import Path

import pytest

from acf.adapters.sql.database import SqlConnection
from acf.domain.abuse import ABUSE_CATEGORY
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.messages import NewMessage
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.firewall import Block, BlockCustomer, LiftBlock
from acf.ports.message_log import AppendMessage
from acf.ports.session_store import SessionRecord
from acf.service import mode_turn_units, turn_progress_units
from acf.service.mode_watch import ModeWatchSettings
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.invariants import messages_in_one_committed_range

WATCH = ModeWatchSettings(interval_ms=5_000)


async def session_of(h: Harness, session_id: str) -> SessionRecord:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    return session


async def block(h: Harness, customer: str, expires_in_ms: int | None = None) -> Block:
    """Block the customer on the web channel, then wake their session as the firewall does."""
    now = h.clock.now_ms()
    expires = None if expires_in_ms is None else now + expires_in_ms
    op = BlockCustomer(
        TENANT, new_id(), Channel.WEB, customer, "threats", "key_alice", now, "tr", expires
    )
    placed = (await h.store.uow.commit(TENANT, [op])).get(op)
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    if session is not None:
        await h.runtime.notify(TENANT, session.session_id)
    await h.settle()
    return placed


async def dropped(h: Harness, session_id: str) -> list[dict[str, object]]:
    query = EventQuery(session_id=session_id, kinds=(EventKind.ABUSE_MESSAGES_DROPPED,))
    return [dict(e.data) for e in await h.store.events.query(TENANT, query)]


async def record_version(h: Harness, turn_id: str) -> str | None:
    def read(conn: SqlConnection) -> str | None:
        row = conn.execute(
            "SELECT config_version FROM turn_records WHERE tenant = ? AND turn_id = ?",
            (TENANT, turn_id),
        ).fetchone()
        assert row is not None
        return None if row[0] is None else str(row[0])

    return await h.store.db.read(TENANT, read)


async def test_a_blocked_customers_messages_are_dropped_audited_and_kept(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        placed = await block(h, "ana")
        assert (await session_of(h, sid)).mode is SessionMode.BLOCKED

        await h.send("ana", "you are useless", settle=False)
        await h.send("ana", "answer me", settle=False)
        await h.run_until_idle()
        await h.send("ana", "hello??")
        await h.run_until_idle()

        assert h.replies("ana") == ["echo: Hi"]  # nothing sent since the block
        session = await session_of(h, sid)
        assert (session.consumed_seq, session.last_seq) == (4, 4)
        messages = await h.store.messages.read_range(TENANT, sid, 0, 4)
        assert [m.text for m in messages] == ["Hi", "you are useless", "answer me", "hello??"]
        turns = await h.store.turns.list_turns(TENANT, sid)
        drops = [t for t in turns if t.kind is TurnKind.DROP]
        assert [(t.phase, t.from_seq, t.to_seq) for t in drops] == [
            (TurnPhase.COMMITTED, 1, 3),
            (TurnPhase.COMMITTED, 3, 4),
        ]
        assert messages_in_one_committed_range(session, turns) == []
        for turn in drops:
            record = await h.store.turns.get_record(TENANT, turn.turn_id)
            assert record is not None
            assert record.outcome is TurnPhase.COMMITTED and record.replies == ()
            assert record.details["category"] == ABUSE_CATEGORY
            assert record.details["block_id"] == placed.block_id
            assert await record_version(h, turn.turn_id) is None  # in no canary arm
        assert await dropped(h, sid) == [
            {"from_seq": 1, "to_seq": 3, "block_id": placed.block_id, "reason": "threats"},
            {"from_seq": 3, "to_seq": 4, "block_id": placed.block_id, "reason": "threats"},
        ]
        assert await h.store.outbox.undelivered(TENANT, sid) == []


async def test_a_window_open_when_the_block_lands_stands_down_then_its_messages_drop(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        accepted = await h.send("ana", "I will")
        sid = accepted.session_id
        live = await h.store.turns.live_turn(TENANT, sid)
        assert live is not None and live.phase is TurnPhase.ACCUMULATING
        await block(h, "ana")
        await h.run_until_idle()

        assert h.replies("ana") == []
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [(t.kind, t.phase) for t in turns] == [
            (TurnKind.AGENT, TurnPhase.SUPERSEDED),
            (TurnKind.DROP, TurnPhase.COMMITTED),
        ]
        session = await session_of(h, sid)
        assert messages_in_one_committed_range(session, turns) == []


async def test_an_expired_block_is_lifted_by_the_mode_watch_and_the_agent_answers_again(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, HarnessOptions(mode_watch=WATCH)) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        placed = await block(h, "ana", expires_in_ms=60_000)
        await h.send("ana", "let me in")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: Hi"]

        await h.advance(60_000 + WATCH.interval_ms)
        lifted = await h.store.blocks.get(TENANT, placed.block_id)
        assert lifted is not None and lifted.lifted_by == "expiry"
        assert (await session_of(h, sid)).mode is SessionMode.AGENT

        await h.send("ana", "Thanks")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: Hi", "echo: Thanks"]


async def test_a_drop_unit_for_a_block_lifted_meanwhile_drops_nothing(tmp_path: Path) -> None:
    """The DROP unit consumes only in blocked mode (``ConsumeRange(mode=BLOCKED)``): built
    for a block that was lifted before it commits, it is refused as a whole."""
    async with Harness(tmp_path, HarnessOptions(mode_watch=None)) as h:
        accepted = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = accepted.session_id
        placed = await block(h, "ana")
        lift = LiftBlock(TENANT, placed.block_id, "key_alice", h.clock.now_ms(), "tr")
        await h.store.uow.commit(TENANT, [lift])
        # A message in agent mode again, stored without waking anyone (no driver races us).
        message = NewMessage(h.key("ana"), new_id(), text="sorry")
        await h.store.uow.commit(TENANT, [AppendMessage(message, h.clock.now_ms(), "tr")])

        lease = await h.store.lease.acquire(TENANT, sid, "test", 60_000)
        assert lease is not None
        turn = turn_progress_units.new_accumulating_turn(
            session_id=sid,
            tenant=TENANT,
            turn_id=new_id(),
            group_id=new_id(),
            trace_id="tr",
            from_seq=1,
            last_seq=2,
            fence=lease.fence,
            at_ms=h.clock.now_ms(),
        )
        with pytest.raises(Conflict) as refused:
            await h.store.uow.commit(
                TENANT, mode_turn_units.drop(turn, lease.fence, placed.block_id, "threats")
            )
        assert refused.value.reason == "mode"
        assert [t.kind for t in await h.store.turns.list_turns(TENANT, sid)] == [TurnKind.AGENT]
        assert await dropped(h, sid) == []


async def test_a_message_after_the_block_expired_is_answered_not_dropped(
    tmp_path: Path,
) -> None:
    """No mode watch has lifted the expired block yet: the driver, about to drop the new
    message, lifts it instead (``expiry``), and the agent answers the message."""
    async with Harness(tmp_path, HarnessOptions(mode_watch=None)) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        placed = await block(h, "ana", expires_in_ms=60_000)
        await h.advance(60_001)
        await h.send("ana", "let me in")
        await h.run_until_idle()

        lifted = await h.store.blocks.get(TENANT, placed.block_id)
        assert lifted is not None and lifted.lifted_by == "expiry"
        assert await dropped(h, sid) == []
        assert (await session_of(h, sid)).mode is SessionMode.AGENT
        assert h.replies("ana") == ["echo: Hi", "echo: let me in"]
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert TurnKind.DROP not in [t.kind for t in turns]
