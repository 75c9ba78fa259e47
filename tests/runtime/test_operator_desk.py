"""The operator's desk on the embedded runtime (a real SQLite file, the real ingress, driver
and relay, a virtual clock).

A handed-off session keeps its messages for people: the customer hears the notice once, an
operator claims the session and answers as a HUMAN turn that consumes what it answered and
goes out through the relay; after a resume the agent answers only what came later. The
desk refuses what the API answers 404, 409 or 422 for, and a reply waits for the session's
lease at most ``LEASE_WAIT_MS``.
"""

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from acf.adapters.sqlite import open_sqlite_store
from acf.domain.channels import Channel
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind
from acf.domain.handoff import default_policies
from acf.domain.ids import SessionId, TenantId
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.signals import DeliveryStatus
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import EnterHuman, HandoffSource, InboxState, Operator
from acf.ports.ledger import BeginExecution, LedgerEntry, LedgerQuery
from acf.ports.message_log import AppendMessage
from acf.ports.outbox import EnqueueReply
from acf.ports.request_log import ReserveRequest
from acf.ports.turn_store import CreateTurn, OpenGroup
from acf.service.operator_desk import LEASE_WAIT_MS, NoSuchSession, OperatorDesk
from acf.service.reply_cut import CutOutcome, cut_if_answered_later
from acf.testing import VirtualClock
from acf.testing.harness import TENANT, Harness
from acf.testing.invariants import messages_in_one_committed_range
from acf.testing.people import People
from tests.contract.helpers import key, message, turn

ALICE = Operator("key_alice", "Alice")
BOB = Operator("key_bob", "Bob")
NOTICE = default_policies(TENANT).handoff.notice


async def kinds(h: Harness, sid: str, kind: EventKind) -> list[dict[str, object]]:
    found = await h.store.events.query(TENANT, EventQuery(session_id=sid, kinds=(kind,)))
    return [dict(e.data) for e in found]


async def test_an_operator_answers_a_handed_off_session_and_hands_it_back(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        first = await h.send("ana", "hello")
        await h.run_until_idle()
        sid = first.session_id
        handoff = await people.hand_off("ana", reason="wants a person")
        again = await people.hand_off("ana")  # idempotent: the same handoff, no new notice
        assert again.handoff_id == handoff.handoff_id
        await h.send("ana", "is anyone there?")
        await h.send("ana", "my order 1001 is late")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: hello", NOTICE]  # the agent stays silent

        await people.claim("ana")
        answer = await people.reply("ana", "Alice here: I am looking at order 1001.")
        await h.run_until_idle()
        assert h.replies("ana")[-1] == "Alice here: I am looking at order 1001."
        assert answer.answered_through_seq == 3
        human = await h.store.turns.get(TENANT, answer.turn_id)
        assert human is not None
        assert (human.kind, human.phase, human.from_seq, human.to_seq) == (
            TurnKind.HUMAN,
            TurnPhase.COMMITTED,
            1,
            3,
        )
        (row,) = [await h.store.outbox.get(TENANT, i) for i in answer.outbox_ids]
        assert row is not None and row.status is DeliveryStatus.SENT
        assert row.payload["author"] == "operator"
        assert row.payload["operator"] == {"key_id": "key_alice", "name": "Alice"}
        record = await h.store.turns.get_record(TENANT, answer.turn_id)
        assert record is not None and record.details["kind"] == "human"
        session = await h.store.sessions.get(TENANT, sid)
        assert session is not None and (session.consumed_seq, session.last_seq) == (3, 3)
        (replied,) = await kinds(h, sid, EventKind.OPERATOR_REPLIED)
        assert replied["turn_id"] == answer.turn_id
        assert replied["outbox_ids"] == list(answer.outbox_ids)
        current = await h.store.handoffs.current(TENANT, sid)
        assert current is not None and current.last_operator_reply_at_ms is not None

        await people.resume("ana", note="order 1001 ships tomorrow")
        await h.send("ana", "thanks!")
        await h.run_until_idle()
        # The agent answers only what came after the operator's reply.
        assert h.replies("ana")[-1] == "echo: thanks!"
        session = await h.store.sessions.get(TENANT, sid)
        assert session is not None and session.mode is SessionMode.AGENT
        assert (
            messages_in_one_committed_range(session, await h.store.turns.list_turns(TENANT, sid))
            == []
        )


async def test_a_reply_may_answer_only_what_the_operator_read(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        await h.send("ana", "one")
        await h.run_until_idle()
        await people.hand_off("ana")
        await h.send("ana", "two")
        await h.send("ana", "three")
        await people.claim("ana")
        answer = await people.reply("ana", "About two:", answers_through_seq=2)
        assert answer.answered_through_seq == 2
        sid = await people.session_id("ana")
        (entry,) = await people.desk().inbox(TENANT, InboxState.CLAIMED)
        assert (entry.handoff.session_id, entry.unanswered) == (sid, 1)


async def test_the_desk_refuses_what_it_must(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        desk = people.desk()
        await h.send("ana", "hello")
        await h.run_until_idle()
        sid = await people.session_id("ana")
        for refused, reason in (
            (desk.reply(TENANT, sid, ALICE, "hi"), "not_human"),
            (desk.claim(TENANT, sid, ALICE), "not_human"),
            (desk.resume(TENANT, sid, ALICE), "not_human"),
        ):
            with pytest.raises(Conflict) as conflict:
                await refused
            assert conflict.value.reason == reason
        await people.hand_off("ana")
        with pytest.raises(Conflict) as conflict:
            await desk.reply(TENANT, sid, ALICE, "hi")
        assert conflict.value.reason == "not_claimed"
        await people.claim("ana", by=BOB)
        for refused, reason in (
            (desk.claim(TENANT, sid, ALICE), "claimed"),
            (desk.reply(TENANT, sid, ALICE, "hi"), "not_claimed"),
            (desk.release(TENANT, sid, ALICE), "not_claimed"),
            (desk.resume(TENANT, sid, ALICE), "claimed"),
        ):
            with pytest.raises(Conflict) as conflict:
                await refused
            assert conflict.value.reason == reason
        with pytest.raises(InvalidValue):
            await desk.reply(TENANT, sid, BOB, "   ")
        with pytest.raises(InvalidValue):
            await desk.add_note(TENANT, sid, BOB, "")
        with pytest.raises(InvalidValue):
            await desk.claim(TENANT, sid, BOB, ttl_ms=0)
        for unknown in (
            desk.handoff("t2", sid, "x", ALICE),  # another tenant's session is unknown
            desk.notes("t2", sid),
            desk.reply(TENANT, "no-such-session", BOB, "hi"),
            desk.add_note(TENANT, "no-such-session", BOB, "hi"),
        ):
            with pytest.raises(NoSuchSession):
                await unknown


async def test_notes_stay_inside_and_a_release_puts_the_session_back_to_waiting(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        desk = people.desk()
        await h.send("ana", "hello")
        await h.run_until_idle()
        sid = await people.session_id("ana")
        await people.hand_off("ana")
        await people.claim("ana")
        note = await desk.add_note(TENANT, sid, ALICE, "  VIP customer  ")
        assert note.text == "VIP customer"
        await h.advance(1_000)
        await people.release("ana", note="back to the queue")
        assert [n.text for n in await desk.notes(TENANT, sid)] == [
            "VIP customer",
            "back to the queue",
        ]
        waiting = await desk.inbox(TENANT, InboxState.WAITING)
        assert [e.handoff.session_id for e in waiting] == [sid]
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: hello", NOTICE]  # notes never reach the customer
        noted = await kinds(h, sid, EventKind.OPERATOR_NOTE_ADDED)
        assert all("text" not in data for data in noted)


async def test_a_reply_waits_for_the_lease_then_gives_up(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        await h.send("ana", "hello")
        await h.run_until_idle()
        sid = await people.session_id("ana")
        await people.hand_off("ana")
        await people.claim("ana")
        await h.steal_lease("ana")  # another holder, for the lease's whole TTL
        started = h.clock.now_ms()
        with pytest.raises(Conflict) as conflict:
            await people.reply("ana", "hello?")
        assert conflict.value.reason == "session_busy"
        assert LEASE_WAIT_MS <= h.clock.now_ms() - started < h.options.lease.ttl_ms
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [t.kind for t in turns] == [TurnKind.AGENT]  # nothing of the reply committed


async def test_a_reply_gets_the_lease_once_its_holder_lets_it_go(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        await h.send("ana", "hello")
        await h.run_until_idle()
        sid = await people.session_id("ana")
        await people.hand_off("ana")
        await people.claim("ana")
        lease = await h.store.lease.acquire(TENANT, sid, "a-driver", 60_000)
        assert lease is not None
        desk = people.desk()
        replying = asyncio.ensure_future(desk.reply(TENANT, sid, ALICE, "here"))
        await h.advance(1_000)
        assert not replying.done()
        await h.store.lease.release(lease)
        await h.advance(100)
        assert (await replying).outbox_ids


async def test_a_reply_stands_down_an_agent_turn_left_live_under_the_lease(
    tmp_path: Path,
) -> None:
    # No runtime: a driver that died with a running turn, its lease since expired.
    clock = VirtualClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    woken: list[tuple[TenantId, SessionId]] = []

    async def wake(tenant: TenantId, session_id: SessionId) -> None:
        woken.append((tenant, session_id))

    try:
        k = key(TENANT, "+15550001", channel=Channel.SMS)
        op = AppendMessage(message(k), clock.now_ms(), "trace-1")
        sid = (await store.uow.commit(TENANT, [op])).get(op).session_id
        lease = await store.lease.acquire(TENANT, sid, "dead-driver", 15_000)
        assert lease is not None
        live = turn(TENANT, sid, fence=lease.fence)
        group = TurnGroup(TENANT, live.group_id, sid, GroupStatus.OPEN, 0, 1, clock.now_ms())
        await store.uow.commit(TENANT, [OpenGroup(group), CreateTurn(live)])
        enter = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, clock.now_ms(), "tr")
        await store.uow.commit(TENANT, [enter])
        clock.advance(16_000)
        desk = OperatorDesk(store, clock, wake, default_policies)
        await desk.claim(TENANT, sid, ALICE)
        answer = await desk.reply(TENANT, sid, ALICE, "A person here.", ["Yes", "No"])
        stood = await store.turns.get(TENANT, live.turn_id)
        assert stood is not None and stood.phase is TurnPhase.SUPERSEDED
        handed = await store.turns.get_group(TENANT, live.group_id)
        assert handed is not None and handed.status is GroupStatus.HANDED_OFF
        human = await store.turns.get(TENANT, answer.turn_id)
        assert human is not None and (human.from_seq, human.to_seq) == (0, 1)
        (row,) = [await store.outbox.get(TENANT, i) for i in answer.outbox_ids]
        assert row is not None
        assert row.payload["buttons"] == [
            {"id": "Yes", "title": "Yes"},
            {"id": "No", "title": "No"},
        ]
        assert woken == [(TENANT, sid), (TENANT, sid)]  # the claim, the reply
        assert await store.lease.current(TENANT, sid) is None  # let go at once
    finally:
        await store.close()


async def test_a_guard_refused_in_the_replys_unit_commits_nothing_of_it(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        people = People(h)
        await h.send("ana", "hello")
        await h.run_until_idle()
        sid = await people.session_id("ana")
        await people.hand_off("ana")
        await people.claim("ana")
        desk = people.desk()
        now = h.clock.now_ms()
        first = await desk.reply(
            TENANT, sid, ALICE, "one", guards=[ReserveRequest("idem-1", "hash-a", now)]
        )
        with pytest.raises(Conflict, match="idempotency key"):
            await desk.reply(
                TENANT, sid, ALICE, "two", guards=[ReserveRequest("idem-1", "hash-b", now)]
            )
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [t.turn_id for t in turns if t.kind is TurnKind.HUMAN] == [first.turn_id]
        # let go after the refusal (the session's driver, woken then, may hold it now)
        held = await h.store.lease.current(TENANT, sid)
        assert held is None or not held.holder.startswith("operator:")


async def test_an_operators_reply_is_never_cut_by_a_newer_message(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        k = key(TENANT, "+15550001")
        first = AppendMessage(message(k), clock.now_ms(), "trace-1")
        sid = (await store.uow.commit(TENANT, [first])).get(first).session_id
        human = replace(
            turn(TENANT, sid, phase=TurnPhase.COMMITTED, from_seq=0, to_seq=1),
            kind=TurnKind.HUMAN,
        )
        parts = [EnqueueReply(sid, human.turn_id, n, {"text": f"p{n}"}, 1_000) for n in (0, 1)]
        await store.uow.commit(TENANT, [CreateTurn(human), *parts])
        newer = AppendMessage(message(k), clock.now_ms(), "trace-2")
        await store.uow.commit(TENANT, [newer])
        claim = await store.claims.claim_delivery(TENANT, sid, "relay", 15_000)
        assert claim is not None
        rows = claim.rows
        correlating: asyncio.Future[Correlation] = asyncio.get_running_loop().create_future()
        correlating.set_result(Correlation(TENANT, human.trace_id, sid, human.turn_id))
        outcome = await cut_if_answered_later(store, clock, claim.lease, rows[1], rows, correlating)
        assert outcome is CutOutcome.KEEP
        kept = await store.outbox.get(TENANT, rows[1].outbox_id)
        assert kept is not None and kept.status is DeliveryStatus.PENDING
    finally:
        await store.close()


@pytest.mark.parametrize("past_gate", [False, True])
async def test_a_reply_over_a_leftover_turn_settles_its_calls(
    tmp_path: Path, past_gate: bool
) -> None:
    """The live turn a dead driver left has a call still ``started``: the reply's unit
    settles it (``in_doubt``: it may have happened). Before the gate the turn stands down,
    the reply answers its messages; past the gate it is stopped, consuming its range, and
    the reply answers only what came after it."""
    clock = VirtualClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)

    async def wake(tenant: TenantId, session_id: SessionId) -> None:
        return None

    try:
        k = key(TENANT, "+15550001", channel=Channel.SMS)
        sid = ""
        for text in ("refund order 1001", "hello?"):
            op = AppendMessage(message(k, text=text), clock.now_ms(), "trace-1")
            sid = (await store.uow.commit(TENANT, [op])).get(op).session_id
        lease = await store.lease.acquire(TENANT, sid, "dead-driver", 15_000)
        assert lease is not None
        live = replace(turn(TENANT, sid, fence=lease.fence), irreversible_started=past_gate)
        group = TurnGroup(TENANT, live.group_id, sid, GroupStatus.OPEN, 0, 1, clock.now_ms())
        call = LedgerEntry(
            tenant=TENANT,
            execution_id="x1",
            idempotency_key="refund:1001",
            tool="refund",
            policy=SideEffectPolicy.IRREVERSIBLE,
            status=LedgerStatus.STARTED,
            session_id=sid,
            group_id=live.group_id,
            turn_id=live.turn_id,
            customer=k.customer,
            args={"order": "1001"},
            started_at_ms=clock.now_ms(),
        )
        await store.uow.commit(TENANT, [OpenGroup(group), CreateTurn(live), BeginExecution(call)])
        enter = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, clock.now_ms(), "tr")
        await store.uow.commit(TENANT, [enter])
        clock.advance(16_000)
        desk = OperatorDesk(store, clock, wake, default_policies)
        await desk.claim(TENANT, sid, ALICE)
        answer = await desk.reply(TENANT, sid, ALICE, "A person here.")

        (settled,) = await store.ledger.query(TENANT, LedgerQuery(group_id=live.group_id))
        assert settled.status is LedgerStatus.IN_DOUBT
        ended = await store.turns.get(TENANT, live.turn_id)
        expected = TurnPhase.FAILED if past_gate else TurnPhase.SUPERSEDED
        assert ended is not None and ended.phase is expected
        human = await store.turns.get(TENANT, answer.turn_id)
        assert human is not None
        assert (human.from_seq, human.to_seq) == ((1, 2) if past_gate else (0, 2))
        session = await store.sessions.get(TENANT, sid)
        assert session is not None and session.consumed_seq == 2
    finally:
        await store.close()


async def test_a_refused_reply_still_wakes_the_session_it_held(tmp_path: Path) -> None:
    # A driver woken while the operator held the session's lease found it taken and waits
    # for its expiry: the desk wakes the session once it lets go, refused or not.
    clock = VirtualClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    woken: list[tuple[TenantId, SessionId]] = []

    async def wake(tenant: TenantId, session_id: SessionId) -> None:
        woken.append((tenant, session_id))

    try:
        k = key(TENANT, "+15550001", channel=Channel.SMS)
        op = AppendMessage(message(k), clock.now_ms(), "trace-1")
        sid = (await store.uow.commit(TENANT, [op])).get(op).session_id
        enter = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, clock.now_ms(), "tr")
        await store.uow.commit(TENANT, [enter])
        desk = OperatorDesk(store, clock, wake, default_policies)
        await desk.claim(TENANT, sid, ALICE)
        now = clock.now_ms()
        await desk.reply(TENANT, sid, ALICE, "one", guards=[ReserveRequest("k", "a", now)])
        woken.clear()
        with pytest.raises(Conflict, match="idempotency key"):
            await desk.reply(TENANT, sid, ALICE, "two", guards=[ReserveRequest("k", "b", now)])
        assert woken == [(TENANT, sid)]
        assert await store.lease.current(TENANT, sid) is None
    finally:
        await store.close()
