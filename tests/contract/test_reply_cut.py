"""Contract: cutting the unsent parts of a paced reply (``CutUnsentPart``, DESIGN §3
invariant 6's one exception) is one conditional write per part: only a later part, pending
and never attempted, of a reply whose session holds a newer message; else ``Conflict`` and
nothing of its unit."""

import pytest

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.signals import DeliveryStatus
from acf.domain.turns import Turn, TurnPhase
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.outbox import (
    ApplyDeliveryStatus,
    CutUnsentPart,
    EnqueueReply,
    RecordAttempt,
    RecordPartsSent,
)
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn
from tests.contract.helpers import append, key, turn


async def answered(store: Store, session_id: str, from_seq: int, to_seq: int) -> Turn:
    t = turn("t1", session_id, from_seq=from_seq, to_seq=to_seq, phase=TurnPhase.COMMITTED)
    await store.uow.commit("t1", [CreateTurn(t)])
    return t


async def reply(store: Store, session_id: str, turn_id: str, parts: int = 3) -> list[int]:
    ops = [EnqueueReply(session_id, turn_id, i, {"text": f"p{i}"}, 1_000) for i in range(parts)]
    done = await store.uow.commit("t1", ops)
    return [done.get(op) for op in ops]


async def statuses(store: Store, ids: list[int]) -> list[DeliveryStatus]:
    found = []
    for oid in ids:
        row = await store.outbox.get("t1", oid)
        assert row is not None
        found.append(row.status)
    return found


async def cut(store: Store, oid: int, tenant: str = "t1") -> bool:
    try:
        await store.uow.commit(tenant, [CutUnsentPart(oid, 2_000)])
    except Conflict:
        return False
    return True


async def test_nothing_is_cut_without_a_newer_message(store: Store) -> None:
    m = await append(store, key())
    t = await answered(store, m.session_id, 0, m.seq)
    ids = await reply(store, m.session_id, t.turn_id)
    assert [await cut(store, oid) for oid in ids] == [False] * 3
    assert await statuses(store, ids) == [DeliveryStatus.PENDING] * 3


async def test_only_later_parts_never_attempted_are_cut(store: Store) -> None:
    m = await append(store, key())
    t = await answered(store, m.session_id, 0, m.seq)
    ids = await reply(store, m.session_id, t.turn_id, parts=5)
    sent, first_try, half_sent = ids[1], ids[2], ids[3]
    await store.uow.commit(
        "t1",
        [
            RecordAttempt(sent, 1_500),
            ApplyDeliveryStatus(sent, DeliveryStatus.SENT, 1_500, "pm-1"),
            RecordAttempt(first_try, 1_600),  # a transient failure: still pending
            RecordPartsSent(half_sent, 1, 1_700),  # a part of it was accepted
        ],
    )
    newer = await append(store, key(), text="wait")
    assert newer.seq == m.seq + 1
    assert [await cut(store, oid) for oid in ids] == [False, False, False, False, True]
    assert await statuses(store, ids) == [
        DeliveryStatus.PENDING,  # the first part is never cut
        DeliveryStatus.SENT,
        DeliveryStatus.PENDING,
        DeliveryStatus.PENDING,
        DeliveryStatus.CUT,
    ]
    assert not await cut(store, ids[4])  # cut is terminal: once
    undelivered = await store.outbox.undelivered("t1", m.session_id)
    assert [r.outbox_id for r in undelivered] == [ids[0], first_try, half_sent]
    late = ApplyDeliveryStatus(ids[4], DeliveryStatus.DELIVERED, 2_100)
    assert not (await store.uow.commit("t1", [late])).get(late)


async def test_a_reply_to_the_newest_message_is_never_cut(store: Store) -> None:
    m = await append(store, key())
    older = await answered(store, m.session_id, 0, m.seq)
    newer_message = await append(store, key(), text="wait")
    newest = await answered(store, m.session_id, m.seq, newer_message.seq)
    old_ids = await reply(store, m.session_id, older.turn_id)
    new_ids = await reply(store, m.session_id, newest.turn_id)
    assert [await cut(store, oid) for oid in new_ids] == [False] * 3
    assert [await cut(store, oid) for oid in old_ids] == [False, True, True]
    assert await statuses(store, new_ids) == [DeliveryStatus.PENDING] * 3


async def test_a_refused_cut_commits_nothing_of_its_unit(store: Store) -> None:
    m = await append(store, key())
    t = await answered(store, m.session_id, 0, m.seq)
    ids = await reply(store, m.session_id, t.turn_id)
    await append(store, key(), text="wait")
    await store.uow.commit("t1", [RecordAttempt(ids[2], 1_500)])  # tried meanwhile
    correlation = Correlation("t1", "trace-1", m.session_id, t.turn_id)
    event = FabricEvent(EventKind.REPLY_CUT, 2_000, correlation, {"outbox_ids": ids[1:]})
    with pytest.raises(Conflict):
        await store.uow.commit(
            "t1", [CutUnsentPart(ids[1], 2_000), CutUnsentPart(ids[2], 2_000), AppendEvent(event)]
        )
    assert await statuses(store, ids) == [DeliveryStatus.PENDING] * 3
    assert await store.events.query("t1", EventQuery(kinds=(EventKind.REPLY_CUT,))) == []


async def test_a_notice_or_another_tenant_cannot_be_cut(store: Store) -> None:
    m = await append(store, key())
    t = await answered(store, m.session_id, 0, m.seq)
    ids = await reply(store, m.session_id, t.turn_id)
    notice = await reply(store, m.session_id, "notice-1", parts=2)  # no turn wrote it
    await append(store, key(), text="wait")
    assert not await cut(store, ids[1], tenant="t2")
    assert not await cut(store, notice[1])
    assert await cut(store, ids[1])
