"""Contract: the handoff's writes, on every backend (reads and the SLA marks:
``test_handoff_inbox_contract``).

Entering human mode is one conditional update of the session: the handoff row, the notice
and the event come only with the change (a repeat is a no-op, so the customer hears the
notice once). One operator holds a claim at a time; of racing claims exactly one wins (on
PostgreSQL also between two stores, the second waiting on the first's row). A resume hands
the session back with ``meta.handover`` in its state. Every write is audited with ``by``.
"""

import asyncio
import threading

import psycopg
import pytest

from acf.adapters.postgres import PgStore, open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.registry import EXECUTORS
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.ports.firewall import BlockCustomer
from acf.ports.handoffs import (
    AddNote,
    CheckClaim,
    ClaimHandoff,
    EnterHuman,
    HandoffSource,
    MarkOperatorReply,
    Operator,
    ReleaseClaim,
    ResumeAgent,
)
from acf.ports.outbox import EnqueueReply
from acf.ports.session_modes import CountFallback, StartCooldown
from acf.ports.session_store import CloseSession, ConsumeRange
from acf.ports.store import Store
from acf.testing import VirtualClock
from tests.contract.handoff_helpers import (
    ALICE,
    BOB,
    NOTICE,
    TTL,
    T,
    claim,
    commit,
    enter,
    events,
    handed_off,
    session,
)
from tests.contract.helpers import key


async def until_a_statement_waits_on_a_lock(url: str) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(1_000):
            found = conn.execute(query).fetchone()
            if found is not None and found[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second claim never waited for the first")


async def test_entering_human_mode_opens_a_handoff_and_queues_the_notice_once(
    store: Store,
) -> None:
    sid = await session(store)
    (handoff,) = await commit(store, enter(sid))
    assert handoff is not None
    assert (handoff.session_id, handoff.source, handoff.opened_at_ms) == (
        sid,
        HandoffSource.PIPELINE,
        2_000,
    )
    record = await store.sessions.get(T, sid)
    assert record is not None
    assert (record.mode, record.mode_reason, record.mode_since_ms) == (
        SessionMode.HUMAN,
        "asked for a person",
        2_000,
    )
    assert await store.handoffs.current(T, sid) == handoff
    assert await store.handoffs.get(T, handoff.handoff_id) == handoff

    assert await commit(store, enter(sid, at_ms=2_500)) == [None]  # already human: no-op
    (notice,) = await store.outbox.for_session(T, sid)
    assert notice.turn_id.startswith("operator-") and notice.position == 0
    assert dict(notice.payload) == {"text": NOTICE, "author": "system"}
    (event,) = await events(store, EventKind.SESSION_HANDED_OFF)
    assert event.correlation.trace_id == "trace-h" and event.correlation.session_id == sid
    assert event.data == {
        "handoff_id": handoff.handoff_id,
        "reason": "asked for a person",
        "source": "pipeline",
        "by": None,
        "notice_outbox_id": notice.outbox_id,
    }
    assert await store.handoffs.history(T, sid) == [handoff]


async def test_an_operator_handoff_names_them_and_may_queue_no_notice(store: Store) -> None:
    sid = await session(store)
    op = EnterHuman(T, sid, "rude", HandoffSource.OPERATOR, 2_000, "trace-o", by=ALICE)
    (handoff,) = await commit(store, op)
    assert handoff.opened_by == "key-alice"
    assert await store.outbox.for_session(T, sid) == []
    (event,) = await events(store, EventKind.SESSION_HANDED_OFF)
    assert event.data["by"] == {"key_id": "key-alice", "name": "Alice"}
    assert event.data["notice_outbox_id"] is None


async def test_a_cooldown_may_be_handed_off_but_closed_and_blocked_sessions_not(
    store: Store,
) -> None:
    cooling = await session(store, customer="+1555cool")
    await commit(store, StartCooldown(T, cooling, 90_000, "flood", "too fast", 1_500, "tr"))
    (handoff,) = await commit(store, enter(cooling))
    assert handoff is not None
    record = await store.sessions.get(T, cooling)
    assert record is not None and (record.mode, record.mode_until_ms) == (SessionMode.HUMAN, None)

    closed = await session(store, customer="+1555closed")
    await commit(store, ConsumeRange(closed, 0, 1, False, 1_500))
    await commit(store, CloseSession(T, closed, 1_600, "idle", 1_000))
    with pytest.raises(Conflict) as refused:
        await commit(store, enter(closed))
    assert refused.value.reason == "closed"

    blocked = await session(store, customer="+1555blocked")
    k = key(T, "+1555blocked")
    await commit(
        store, BlockCustomer(T, "b1", k.channel, k.customer, "spam", "key-alice", 1_500, "tr")
    )
    with pytest.raises(Conflict) as refused:
        await commit(store, enter(blocked))
    assert refused.value.reason == "blocked"
    assert await store.handoffs.current(T, blocked) is None


async def test_one_operator_claims_renews_and_another_takes_over_once_it_expired(
    store: Store,
) -> None:
    sid, handoff = await handed_off(store)
    (claimed,) = await commit(store, claim(sid))
    assert (claimed.handoff_id, claimed.claimed_by, claimed.claimed_by_name) == (
        handoff.handoff_id,
        "key-alice",
        "Alice",
    )
    assert (claimed.claimed_at_ms, claimed.claim_expires_at_ms) == (3_000, 3_000 + TTL)
    assert claimed.claimed_at(3_001) == "key-alice"

    (renewed,) = await commit(store, claim(sid, at_ms=10_000))
    assert (renewed.claimed_at_ms, renewed.claim_expires_at_ms) == (3_000, 10_000 + TTL)
    with pytest.raises(Conflict) as refused:
        await commit(store, claim(sid, BOB, at_ms=20_000))
    assert refused.value.reason == "claimed"

    (taken,) = await commit(store, claim(sid, BOB, at_ms=10_000 + TTL))  # Alice's expired
    assert (taken.claimed_by, taken.claimed_at_ms) == ("key-bob", 10_000 + TTL)
    claims = await events(store, EventKind.HANDOFF_CLAIMED)
    assert [(e.data["by"]["key_id"], e.data["renewed"]) for e in claims] == [
        ("key-alice", False),
        ("key-alice", True),
        ("key-bob", False),
    ]
    assert claims[0].correlation.trace_id == "trace-c"


async def test_no_claim_without_an_open_handoff(store: Store) -> None:
    sid = await session(store)
    for op in (
        claim(sid),
        CheckClaim(T, sid, ALICE, 3_000),
        ReleaseClaim(T, sid, ALICE, None, 3_000, "tr"),
    ):
        with pytest.raises(Conflict) as refused:
            await commit(store, op)
        assert refused.value.reason == "not_human"


async def test_racing_claims_one_wins(store: Store) -> None:
    sid, _ = await handed_off(store)
    who = [Operator(f"key-{n}", f"Operator {n}") for n in range(4)]
    results = await asyncio.gather(
        *(commit(store, claim(sid, by)) for by in who), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(r, Conflict) and r.reason == "claimed" for r in results if r not in won)
    current = await store.handoffs.current(T, sid)
    assert current is not None and current.claimed_by == won[0][0].claimed_by


@pytest.mark.backends("postgresql")
async def test_on_postgresql_a_second_claim_waits_for_the_first_then_loses(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    assert isinstance(store, PgStore)
    sid, _ = await handed_off(store)
    other = await open_pg_store(
        request.getfixturevalue("postgres_url"), clock, pool_size=2, caller_clock=True
    )
    claimed, release = threading.Event(), threading.Event()

    def hold(conn: SqlConnection) -> None:
        # Alice's claim, left uncommitted until Bob's unit is waiting on its row.
        EXECUTORS[ClaimHandoff](conn, T, claim(sid))
        claimed.set()
        release.wait(30)

    try:
        holding = asyncio.create_task(store.db.write(T, hold))
        assert await asyncio.to_thread(claimed.wait, 30)
        racing = asyncio.create_task(other.uow.commit(T, [claim(sid, BOB)]))
        await until_a_statement_waits_on_a_lock(request.getfixturevalue("postgres_url"))
        assert not racing.done()  # waiting on Alice's row
        release.set()
        await holding
        with pytest.raises(Conflict) as refused:
            await racing
        assert refused.value.reason == "claimed"
    finally:
        release.set()
        await other.close()
    current = await store.handoffs.current(T, sid)
    assert current is not None and current.claimed_by == "key-alice"


async def test_the_claim_check_passes_for_the_live_claimant_only(store: Store) -> None:
    sid, handoff = await handed_off(store)
    await commit(store, claim(sid))
    assert await commit(store, CheckClaim(T, sid, ALICE, 4_000)) == [handoff.handoff_id]
    for by, at in ((BOB, 4_000), (ALICE, 3_000 + TTL)):
        with pytest.raises(Conflict) as refused:
            await commit(store, CheckClaim(T, sid, by, at))
        assert refused.value.reason == "not_claimed"


async def test_a_release_keeps_human_mode_and_files_its_note(store: Store) -> None:
    sid, handoff = await handed_off(store)
    await commit(store, claim(sid))
    with pytest.raises(Conflict) as refused:
        await commit(store, ReleaseClaim(T, sid, BOB, None, 4_000, "tr"))
    assert refused.value.reason == "not_claimed"
    await commit(store, ReleaseClaim(T, sid, ALICE, "card number is in the notes", 4_000, "tr"))
    current = await store.handoffs.current(T, sid)
    assert current is not None
    assert (current.claimed_by, current.claim_expires_at_ms) == (None, None)
    record = await store.sessions.get(T, sid)
    assert record is not None and record.mode is SessionMode.HUMAN
    (note,) = await store.handoffs.notes(T, sid)
    assert (note.handoff_id, note.author_key_id, note.text) == (
        handoff.handoff_id,
        "key-alice",
        "card number is in the notes",
    )
    (event,) = await events(store, EventKind.HANDOFF_RELEASED)
    assert event.data == {
        "handoff_id": handoff.handoff_id,
        "by": ALICE.as_payload(),
        "note_id": note.note_id,
    }
    with pytest.raises(Conflict) as refused:
        await commit(store, ReleaseClaim(T, sid, ALICE, None, 5_000, "tr"))
    assert refused.value.reason == "not_claimed"


async def test_notes_attach_to_the_open_handoff_and_their_events_carry_no_text(
    store: Store,
) -> None:
    sid = await session(store)
    (before,) = await commit(store, AddNote(T, sid, "n1", ALICE, "first", 1_500, "tr"))
    assert before.handoff_id is None
    (handoff,) = await commit(store, enter(sid))
    (during,) = await commit(store, AddNote(T, sid, "n2", BOB, "secret detail", 2_500, "tr"))
    assert (during.handoff_id, during.author_name) == (handoff.handoff_id, "Bob")
    assert await store.handoffs.notes(T, sid) == [before, during]
    noted = await events(store, EventKind.OPERATOR_NOTE_ADDED)
    assert [e.data for e in noted] == [
        {"note_id": "n1", "handoff_id": None, "by": ALICE.as_payload()},
        {"note_id": "n2", "handoff_id": handoff.handoff_id, "by": BOB.as_payload()},
    ]
    with pytest.raises(Conflict):
        await commit(store, AddNote(T, "no-such-session", "n3", ALICE, "x", 2_600, "tr"))


async def test_an_operator_reply_mark_extends_the_claim_and_names_the_rows(
    store: Store,
) -> None:
    sid, handoff = await handed_off(store)
    await commit(store, claim(sid))
    row = EnqueueReply(sid, "human-turn", 0, {"text": "hi", "author": "operator"}, 5_000)
    mark = MarkOperatorReply(
        T,
        handoff.handoff_id,
        5_000,
        5_000 + 2 * TTL,
        turn_id="human-turn",
        by=ALICE,
        trace_id="trace-r",
    )
    outbox_id, _ = await commit(store, row, mark)
    current = await store.handoffs.current(T, sid)
    assert current is not None
    assert (current.last_operator_reply_at_ms, current.claim_expires_at_ms) == (
        5_000,
        5_000 + 2 * TTL,
    )
    await commit(store, MarkOperatorReply(T, handoff.handoff_id, 6_000, 6_000))  # never shortens
    current = await store.handoffs.current(T, sid)
    assert current is not None and current.claim_expires_at_ms == 5_000 + 2 * TTL
    (event,) = await events(store, EventKind.OPERATOR_REPLIED)
    assert (event.correlation.trace_id, event.correlation.turn_id) == ("trace-r", "human-turn")
    assert event.data == {
        "handoff_id": handoff.handoff_id,
        "by": ALICE.as_payload(),
        "turn_id": "human-turn",
        "outbox_ids": [outbox_id],
    }


async def test_resume_hands_back_with_the_handover_in_the_state(store: Store) -> None:
    sid, handoff = await handed_off(store)
    await commit(store, claim(sid))
    before = await store.sessions.get(T, sid)
    assert before is not None
    with pytest.raises(Conflict) as refused:
        await commit(store, ResumeAgent(T, sid, BOB, None, 5_000, "tr"))
    assert refused.value.reason == "claimed"
    await commit(store, ResumeAgent(T, sid, ALICE, "refund sent", 5_000, "trace-z"))
    after = await store.sessions.get(T, sid)
    assert after is not None
    assert (after.mode, after.mode_reason, after.mode_since_ms) == (SessionMode.AGENT, None, 5_000)
    assert after.state_version == before.state_version + 1
    assert after.state["meta"]["handover"] == {
        "note": "refund sent",
        "by": ALICE.as_payload(),
        "at_ms": 5_000,
    }
    assert await store.handoffs.current(T, sid) is None
    resolved = await store.handoffs.get(T, handoff.handoff_id)
    assert resolved is not None
    assert (resolved.resolved_at_ms, resolved.resolved_by, resolved.resume_note) == (
        5_000,
        "key-alice",
        "refund sent",
    )
    (event,) = await events(store, EventKind.SESSION_RESUMED)
    assert event.correlation.trace_id == "trace-z"
    assert event.data["by"] == ALICE.as_payload() and event.data["with_note"] is True

    with pytest.raises(Conflict) as refused:
        await commit(store, ResumeAgent(T, sid, ALICE, None, 6_000, "tr"))
    assert refused.value.reason == "not_human"
    (again,) = await commit(store, enter(sid, at_ms=7_000))  # a new handoff, a new notice
    assert again is not None and again.handoff_id != handoff.handoff_id
    assert len(await store.outbox.for_session(T, sid)) == 2


async def test_resume_without_a_note_still_says_a_person_had_it(store: Store) -> None:
    sid, _ = await handed_off(store)  # nobody claimed it: anyone may hand it back
    await commit(store, ResumeAgent(T, sid, BOB, None, 5_000, "tr"))
    after = await store.sessions.get(T, sid)
    assert after is not None
    handover = after.state["meta"]["handover"]
    assert (handover.get("note"), handover["by"], handover["at_ms"]) == (
        None,
        BOB.as_payload(),
        5_000,
    )


async def test_resume_starts_the_fallback_count_again(store: Store) -> None:
    sid = await session(store)
    counted = [CountFallback(sid, 1_500 + n) for n in range(3)]
    await commit(store, *counted)  # the tenant's rule hands off after three
    await commit(store, EnterHuman(T, sid, "fallbacks", HandoffSource.RULE, 2_000, "tr"))
    await commit(store, ResumeAgent(T, sid, ALICE, None, 5_000, "tr"))
    after = await store.sessions.get(T, sid)
    assert after is not None and after.fallbacks == 0
    # One more fallback is one, not four: the rule does not hand the session off again.
    (count,) = await commit(store, CountFallback(sid, 6_000))
    assert count == 1
