"""Contract: the session's mode is part of an agent turn's commit guard (DESIGN §4), on
every backend. A turn running when the session is handed off (or cooled down, or
blocked) commits no reply: its unit is refused with ``Conflict("mode")`` and nothing of
it is written; it stands down (SUPERSEDED, group HANDED_OFF) or, past the irreversible
gate, commits silently (effects kept, reply withheld). On PostgreSQL the check is made
on the row the consume locks, so a handoff committing while the consume waits for the
row refuses it."""

import asyncio
import threading
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sqlite import SqliteStore
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.domain.replies import PipelineResult
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.session_store import ConsumeRange
from acf.ports.store import Store
from acf.ports.timers import SetTimer
from acf.ports.turn_store import CreateTurn, MarkIrreversibleStarted, OpenGroup
from acf.service import turn_ending_units, turn_progress_units
from acf.testing import VirtualClock
from tests.contract.helpers import append, key, turn

T = "t1"
V = turn_progress_units.Versions("acf/0 p/1", "v1")


@dataclass(frozen=True)
class Running:
    turn: Turn
    group: TurnGroup


async def running(store: Store, phase: TurnPhase = TurnPhase.RUNNING) -> Running:
    """A session with two messages, its lease (fence 1) and a live turn over both."""
    k = key()
    await append(store, k, "m1")
    r = await append(store, k, "m2")
    assert await store.lease.acquire(T, r.session_id, "w", 600_000) is not None
    group = TurnGroup(T, "g1", r.session_id, GroupStatus.OPEN, 1, 2, 1_000)
    live = replace(turn(T, r.session_id, from_seq=0, to_seq=2, phase=phase), group_id="g1")
    ops: list[Any] = [OpenGroup(group), CreateTurn(live)]
    if phase is TurnPhase.ACCUMULATING:
        ops.append(SetTimer(turn_progress_units.window_timer(live, 5_000, 0)))
    await store.uow.commit(T, ops)
    return Running(live, group)


async def set_mode(store: Store, session_id: str, mode: SessionMode) -> None:
    assert isinstance(store, SqliteStore | PgStore)

    def run(conn: SqlConnection) -> None:
        conn.execute(
            "UPDATE sessions SET mode = ? WHERE tenant = ? AND session_id = ?",
            (mode.value, T, session_id),
        )

    await store.db.write(T, run)


def commit_unit(live: Running, silent: bool = False, require_last_seq: bool = True) -> list[Any]:
    return turn_ending_units.commit(
        turn=live.turn,
        group=live.group,
        fence=1,
        result=PipelineResult.reply("Your order ships today.", state_patch={"data": {"x": 1}}),
        state_version=0,
        require_last_seq=require_last_seq,
        started_at_ms=1_000,
        at_ms=2_000,
        versions=V,
        silent=silent,
    )


async def consumed(store: Store, session_id: str) -> int:
    session = await store.sessions.get(T, session_id)
    assert session is not None
    return session.consumed_seq


async def test_consume_range_is_refused_when_the_mode_changed(store: Store) -> None:
    r = await append(store, key())
    sid = r.session_id
    await set_mode(store, sid, SessionMode.HUMAN)
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, [ConsumeRange(sid, 0, 1, True, 2_000)])
    assert await consumed(store, sid) == 0
    # The mode is named first, whatever else does not hold.
    await append(store, key())
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, [ConsumeRange(sid, 0, 1, True, 2_000)])
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, [ConsumeRange(sid, 1, 2, True, 2_000)])
    # Other modes and any mode (None) are for the units of other kinds of turns.
    await store.uow.commit(T, [ConsumeRange(sid, 0, 1, False, 2_000, SessionMode.HUMAN)])
    await store.uow.commit(T, [ConsumeRange(sid, 1, 2, True, 2_000, None)])
    assert await consumed(store, sid) == 2


async def test_consume_range_other_refusals_in_agent_mode(store: Store) -> None:
    r = await append(store, key())
    await append(store, key())
    with pytest.raises(Conflict, match=r"^new_messages$"):
        await store.uow.commit(T, [ConsumeRange(r.session_id, 0, 1, True, 2_000)])
    with pytest.raises(Conflict, match=r"^mode$"):  # the agent's own mode, asked elsewhere
        await store.uow.commit(
            T, [ConsumeRange(r.session_id, 0, 2, True, 2_000, SessionMode.BLOCKED)]
        )


async def test_the_irreversible_gate_is_refused_outside_agent_mode(store: Store) -> None:
    live = await running(store)
    sid = live.turn.session_id
    await set_mode(store, sid, SessionMode.COOLDOWN)
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, [MarkIrreversibleStarted(live.turn.turn_id, 1, True, 2_000)])
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and not got.irreversible_started
    await set_mode(store, sid, SessionMode.AGENT)
    await store.uow.commit(T, [MarkIrreversibleStarted(live.turn.turn_id, 1, True, 2_000)])
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.irreversible_started


async def test_a_turn_running_at_the_handoff_commits_no_reply(store: Store) -> None:
    """The issue's "a turn running when the handoff happens ends without a reply"."""
    live = await running(store)
    sid = live.turn.session_id
    await set_mode(store, sid, SessionMode.HUMAN)
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, commit_unit(live))
    # Nothing of the unit was written.
    assert await store.outbox.for_session(T, sid) == []
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.RUNNING
    session = await store.sessions.get(T, sid)
    assert session is not None and session.state_version == 0 and session.consumed_seq == 0

    await store.uow.commit(
        T, turn_ending_units.stand_down(live.turn, 1, V, 3_000, SessionMode.HUMAN, 1_000)
    )
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.SUPERSEDED
    group = await store.turns.get_group(T, "g1")
    assert group is not None and group.status is GroupStatus.HANDED_OFF
    assert (group.restarts, group.attempts) == (1, 2)  # its counters kept
    record = await store.turns.get_record(T, live.turn.turn_id)
    assert record is not None and record.outcome is TurnPhase.SUPERSEDED and record.replies == ()
    assert record.details == {"reason": "mode", "mode": "human"}
    (event,) = await store.events.query(
        T, EventQuery(kinds=(EventKind.TURN_SUPERSEDED,), in_commit_order=False)
    )
    assert (event.data["reason"], event.data["mode"]) == ("mode", "human")
    assert "restart_turn_id" not in event.data
    assert await store.turns.live_turn(T, sid) is None  # no restart
    assert await consumed(store, sid) == 0  # the messages wait for the operator
    assert await store.outbox.for_session(T, sid) == []


async def test_an_accumulating_turn_stands_down_without_its_window(store: Store) -> None:
    live = await running(store, TurnPhase.ACCUMULATING)
    sid = live.turn.session_id
    await set_mode(store, sid, SessionMode.BLOCKED)
    await store.uow.commit(
        T, turn_ending_units.stand_down(live.turn, 1, V, 3_000, SessionMode.BLOCKED)
    )
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.SUPERSEDED
    assert await store.timers.get(T, sid, turn_progress_units.WINDOW_TIMER) is None
    record = await store.turns.get_record(T, live.turn.turn_id)
    assert record is not None and record.details["mode"] == "blocked"
    assert record.started_at_ms == live.turn.created_at_ms


async def test_a_stand_down_is_fenced(store: Store, clock: VirtualClock) -> None:
    live = await running(store)
    clock.advance(600_000)  # the lease expires; another holder takes it (fence 2)
    assert await store.lease.acquire(T, live.turn.session_id, "w2", 60_000) is not None
    with pytest.raises(Conflict):
        await store.uow.commit(
            T, turn_ending_units.stand_down(live.turn, 1, V, clock.now_ms(), SessionMode.HUMAN)
        )
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.RUNNING


async def test_past_the_gate_the_commit_is_silent(store: Store) -> None:
    live = await running(store)
    sid = live.turn.session_id
    await store.uow.commit(T, [MarkIrreversibleStarted(live.turn.turn_id, 1, True, 1_500)])
    await set_mode(store, sid, SessionMode.HUMAN)
    await append(store, key(), "m3")  # the customer goes on writing to the operator
    with pytest.raises(Conflict, match=r"^mode$"):
        await store.uow.commit(T, commit_unit(live))
    await store.uow.commit(T, commit_unit(live, silent=True, require_last_seq=False))
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.COMMITTED
    assert await store.outbox.for_session(T, sid) == []  # the reply withheld
    record = await store.turns.get_record(T, live.turn.turn_id)
    assert record is not None and record.replies == ()
    assert record.details["withheld_replies"] == ["Your order ships today."]
    session = await store.sessions.get(T, sid)
    assert session is not None and session.mode is SessionMode.HUMAN
    assert session.consumed_seq == 2 and session.last_seq == 3  # m3 waits for the operator
    assert session.state["data"] == {"x": 1}  # its effects kept
    group = await store.turns.get_group(T, "g1")
    assert group is not None and group.status is GroupStatus.COMMITTED


async def _until_a_statement_waits_on_a_lock(url: str) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(3_000):
            found = conn.execute(query).fetchone()
            if found is not None and found[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the consume never waited for the handoff")


@pytest.mark.backends("postgresql")
async def test_on_postgresql_a_handoff_committing_under_a_waiting_consume_refuses_it(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    assert isinstance(store, PgStore)
    url = request.getfixturevalue("postgres_url")
    r = await append(store, key())
    other = await open_pg_store(url, clock, pool_size=2, caller_clock=True)
    updated, release = threading.Event(), threading.Event()

    def handoff(conn: SqlConnection) -> None:
        # The handoff's update, left uncommitted until the consume waits on the row.
        conn.execute(
            "UPDATE sessions SET mode = 'human' WHERE tenant = ? AND session_id = ?",
            (T, r.session_id),
        )
        updated.set()
        release.wait(30)

    try:
        holding = asyncio.create_task(store.db.write(T, handoff))
        assert await asyncio.to_thread(updated.wait, 30)
        consume = ConsumeRange(r.session_id, 0, 1, True, 2_000)
        racing = asyncio.create_task(other.uow.commit(T, [consume]))
        await _until_a_statement_waits_on_a_lock(url)
        assert not racing.done()
        release.set()
        await holding
        with pytest.raises(Conflict, match=r"^mode$"):
            await racing
    finally:
        release.set()
        await other.close()
    assert await consumed(store, r.session_id) == 0
