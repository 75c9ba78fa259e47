"""Contract: a turn past the irreversible gate outside agent mode, on every backend.

- ``mode_turn_units.stop_past_gate`` (a driver or an operator's reply found the turn live,
  RUNNING past the gate, its runner gone): the turn FAILED, its range consumed in any mode,
  its group's ``started`` calls settled (``in_doubt`` for an irreversible one), its group
  HANDED_OFF, the session flagged, no reply; ``leave_agent_mode`` picks it only past the
  gate (else the turn stands down, its range unconsumed).
- On PostgreSQL the gate reads the session row ``FOR SHARE``: a handoff committing while
  the gate waits for the row refuses the gate (``Conflict("mode")``), as it does the
  consume.
"""

import asyncio
import threading
from dataclasses import replace

import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.sql.database import SqlConnection
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import GroupStatus, TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.ledger import BeginExecution, LedgerEntry, LedgerQuery
from acf.ports.store import Store
from acf.ports.turn_store import MarkIrreversibleStarted
from acf.service import mode_turn_units
from acf.testing import VirtualClock
from tests.contract.helpers import append, key
from tests.contract.test_session_mode_guard import (
    Running,
    T,
    V,
    _until_a_statement_waits_on_a_lock,
    consumed,
    running,
    set_mode,
)


async def _past_gate(store: Store) -> Running:
    live = await running(store)
    await store.uow.commit(T, [MarkIrreversibleStarted(live.turn.turn_id, 1, True, 1_500)])
    return Running(replace(live.turn, irreversible_started=True), live.group)


async def _started_call(store: Store, live: Running, policy: SideEffectPolicy) -> None:
    entry = LedgerEntry(
        tenant=T,
        execution_id=new_id(),
        idempotency_key=f"refund:{policy.value}",
        tool="refund",
        policy=policy,
        status=LedgerStatus.STARTED,
        session_id=live.turn.session_id,
        group_id=live.turn.group_id,
        turn_id=live.turn.turn_id,
        customer=key().customer,
        args={"order": "1001"},
        started_at_ms=1_600,
    )
    await store.uow.commit(T, [BeginExecution(entry)])


async def test_a_turn_past_the_gate_is_stopped_and_consumes_its_range(store: Store) -> None:
    live = await _past_gate(store)
    sid = live.turn.session_id
    await _started_call(store, live, SideEffectPolicy.IRREVERSIBLE)
    await set_mode(store, sid, SessionMode.HUMAN)
    await append(store, key(), "m3")  # written to the operator meanwhile
    entries = await store.ledger.query(T, LedgerQuery(group_id=live.turn.group_id))
    ops = mode_turn_units.leave_agent_mode(
        live.turn, 1, V, 3_000, SessionMode.HUMAN, unfinished=entries
    )
    await store.uow.commit(T, ops)

    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.FAILED
    assert await consumed(store, sid) == 2  # answered as far as the agent goes; m3 waits
    session = await store.sessions.get(T, sid)
    assert session is not None and session.mode is SessionMode.HUMAN and session.flagged
    (entry,) = await store.ledger.query(T, LedgerQuery(group_id=live.turn.group_id))
    assert entry.status is LedgerStatus.IN_DOUBT
    group = await store.turns.get_group(T, live.group.group_id)
    assert group is not None and group.status is GroupStatus.HANDED_OFF
    record = await store.turns.get_record(T, live.turn.turn_id)
    assert record is not None and record.outcome is TurnPhase.FAILED and record.replies == ()
    assert record.details == {
        "reason": "mode",
        "mode": "human",
        "past_gate": True,
        "withheld_replies": [],
    }
    (failed,) = await store.events.query(
        T, EventQuery(kinds=(EventKind.TURN_FAILED,), in_commit_order=False)
    )
    assert (failed.data["reason"], failed.data["mode"]) == ("mode", "human")
    assert await store.outbox.for_session(T, sid) == []
    assert await store.turns.live_turn(T, sid) is None


async def test_before_the_gate_the_turn_stands_down_unconsumed(store: Store) -> None:
    live = await running(store)
    sid = live.turn.session_id
    await set_mode(store, sid, SessionMode.COOLDOWN)
    await store.uow.commit(
        T, mode_turn_units.leave_agent_mode(live.turn, 1, V, 3_000, SessionMode.COOLDOWN)
    )
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and got.phase is TurnPhase.SUPERSEDED
    assert await consumed(store, sid) == 0


async def test_stopping_past_the_gate_is_fenced(store: Store, clock: VirtualClock) -> None:
    live = await _past_gate(store)
    clock.advance(600_000)  # another holder takes the lease (fence 2)
    assert await store.lease.acquire(T, live.turn.session_id, "w2", 60_000) is not None
    ops = mode_turn_units.stop_past_gate(live.turn, 1, V, clock.now_ms(), SessionMode.HUMAN)
    with pytest.raises(Conflict):
        await store.uow.commit(T, ops)
    assert await consumed(store, live.turn.session_id) == 0


@pytest.mark.backends("postgresql")
async def test_on_postgresql_a_handoff_committing_under_a_waiting_gate_refuses_it(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    assert isinstance(store, PgStore)
    url = request.getfixturevalue("postgres_url")
    live = await running(store)
    sid = live.turn.session_id
    other = await open_pg_store(url, clock, pool_size=2, caller_clock=True)
    updated, release = threading.Event(), threading.Event()

    def handoff(conn: SqlConnection) -> None:
        # The handoff's update, left uncommitted until the gate waits on the row.
        conn.execute(
            "UPDATE sessions SET mode = 'human' WHERE tenant = ? AND session_id = ?",
            (T, sid),
        )
        updated.set()
        release.wait(30)

    try:
        holding = asyncio.create_task(store.db.write(T, handoff))
        assert await asyncio.to_thread(updated.wait, 30)
        gate = MarkIrreversibleStarted(live.turn.turn_id, 1, True, 2_000)
        racing = asyncio.create_task(other.uow.commit(T, [gate]))
        await _until_a_statement_waits_on_a_lock(url)
        assert not racing.done()
        release.set()
        await holding
        with pytest.raises(Conflict, match=r"^mode$"):
            await racing
    finally:
        release.set()
        await other.close()
    got = await store.turns.get(T, live.turn.turn_id)
    assert got is not None and not got.irreversible_started
