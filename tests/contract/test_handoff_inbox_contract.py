"""Contract: the handoffs' reads (the inbox, a session's history) and the SLA marks, on
every backend.

The inbox lists open handoffs oldest waiting first (waiting since the handoff opened, or
since an operator last answered), split by whether someone holds a live claim; resolved
ones newest first. The SLA marks are set once: a second process finds them set and writes
nothing, and the still-waiting notice goes only to a customer nobody has claimed.
"""

from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.ports.handoffs import (
    InboxState,
    MarkOperatorReply,
    MarkSlaBreached,
    MarkStillWaiting,
    ResumeAgent,
)
from acf.ports.store import Store
from tests.contract.handoff_helpers import (
    ALICE,
    NOTICE,
    TTL,
    T,
    claim,
    commit,
    events,
    handed_off,
)
from tests.contract.helpers import append, key

NOW = 4_000


async def inbox_ids(store: Store, state: InboxState, now_ms: int = NOW) -> list[str]:
    return [e.handoff.session_id for e in await store.handoffs.inbox(T, state, now_ms)]


async def test_the_inbox_by_state(store: Store) -> None:
    waiting, _ = await handed_off(store, customer="+1555waiting", at_ms=2_000)
    claimed, _ = await handed_off(store, 3, customer="+1555claimed", at_ms=2_500)
    await commit(store, claim(claimed))
    resolved, _ = await handed_off(store, customer="+1555resolved", at_ms=1_800)
    await commit(store, ResumeAgent(T, resolved, ALICE, None, 3_500, "tr"))
    answered, answered_handoff = await handed_off(store, customer="+1555answered", at_ms=1_900)
    await commit(store, MarkOperatorReply(T, answered_handoff.handoff_id, 2_600))

    assert await inbox_ids(store, InboxState.WAITING) == [waiting, answered]
    assert await inbox_ids(store, InboxState.CLAIMED) == [claimed]
    assert await inbox_ids(store, InboxState.OPEN) == [waiting, claimed, answered]
    assert await inbox_ids(store, InboxState.RESOLVED) == [resolved]
    # Once the claim expired, the session waits again.
    later = 3_000 + TTL
    assert await inbox_ids(store, InboxState.WAITING, later) == [waiting, claimed, answered]
    assert await inbox_ids(store, InboxState.CLAIMED, later) == []
    first = await store.handoffs.inbox(T, InboxState.OPEN, NOW, limit=1)
    assert [e.handoff.session_id for e in first] == [waiting]
    assert await store.handoffs.inbox("t2", InboxState.OPEN, NOW) == []


async def test_an_inbox_entry_tells_who_waits_since_when_and_for_what(store: Store) -> None:
    sid, handoff = await handed_off(store, 3, customer="+1555entry", at_ms=2_000)
    await commit(store, claim(sid))
    (entry,) = await store.handoffs.inbox(T, InboxState.OPEN, NOW)
    assert entry.handoff.handoff_id == handoff.handoff_id
    assert entry.handoff.claimed_by == "key-alice"
    assert (entry.agent, entry.customer, entry.channel, entry.mode) == (
        "support",
        "+1555entry",
        Channel.WHATSAPP,
        SessionMode.HUMAN,
    )
    assert (entry.last_seq, entry.consumed_seq, entry.unanswered) == (3, 0, 3)
    assert (entry.waiting_since_ms, entry.preview) == (2_000, "message 3")
    await commit(store, MarkOperatorReply(T, handoff.handoff_id, 3_500))
    await append(store, key(T, "+1555entry"), text="x" * 300, at_ms=3_600)
    (entry,) = await store.handoffs.inbox(T, InboxState.OPEN, NOW)
    assert (entry.waiting_since_ms, entry.last_seq) == (3_500, 4)
    assert entry.preview == "x" * 200


async def test_a_sessions_handoffs_in_order(store: Store) -> None:
    sid, first = await handed_off(store, at_ms=2_000)
    await commit(store, ResumeAgent(T, sid, ALICE, "done", 3_000, "tr"))
    await append(store, key(T, "+15550001"), text="again", at_ms=3_100)
    _, second = await handed_off(store, at_ms=3_200)
    history = await store.handoffs.history(T, sid)
    assert [h.handoff_id for h in history] == [first.handoff_id, second.handoff_id]
    assert history[0].resume_note == "done" and history[1].resolved_at_ms is None
    assert await store.handoffs.current(T, sid) == second
    assert await store.handoffs.history("t2", sid) == []
    assert await store.handoffs.get("t2", first.handoff_id) is None


async def test_sla_and_still_waiting_marks_happen_once(store: Store) -> None:
    sid, handoff = await handed_off(store)
    hid = handoff.handoff_id
    assert await commit(store, MarkSlaBreached(T, hid, 400_000, 398_000)) == [True]
    assert await commit(store, MarkSlaBreached(T, hid, 401_000, 399_000)) == [False]
    still = MarkStillWaiting(T, hid, 900_000, "Still there: someone will answer.")
    assert await commit(store, still) == [True]
    assert await commit(store, still) == [False]
    current = await store.handoffs.current(T, sid)
    assert current is not None
    assert (current.sla_breached_at_ms, current.still_waiting_at_ms) == (400_000, 900_000)
    rows = await store.outbox.for_session(T, sid)
    assert [r.payload["text"] for r in rows] == [NOTICE, "Still there: someone will answer."]
    assert rows[1].payload["author"] == "system" and rows[1].turn_id.startswith("operator-")
    (breached,) = await events(store, EventKind.HANDOFF_SLA_BREACHED)
    assert breached.data == {"handoff_id": hid, "waited_ms": 398_000}
    (waiting,) = await events(store, EventKind.HANDOFF_STILL_WAITING)
    assert waiting.data == {"handoff_id": hid, "notice_outbox_id": rows[1].outbox_id}


async def test_no_still_waiting_notice_once_claimed_or_resolved(store: Store) -> None:
    sid, handoff = await handed_off(store)
    await commit(store, claim(sid))
    still = MarkStillWaiting(T, handoff.handoff_id, 4_000, "Still there?")
    assert await commit(store, still) == [False]
    await commit(store, ResumeAgent(T, sid, ALICE, None, 5_000, "tr"))
    assert await commit(store, MarkStillWaiting(T, handoff.handoff_id, 6_000, "?")) == [False]
    assert await commit(store, MarkSlaBreached(T, handoff.handoff_id, 6_000, 4_000)) == [False]
    assert len(await store.outbox.for_session(T, sid)) == 1  # the handoff's notice only
    assert await events(store, EventKind.HANDOFF_STILL_WAITING) == []
