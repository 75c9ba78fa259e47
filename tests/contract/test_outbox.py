"""Contract: Outbox."""

import pytest

from acf.domain.errors import Conflict
from acf.domain.signals import DeliveryStatus
from acf.ports.outbox import ApplyDeliveryStatus, EnqueueReply, RecordAttempt, RecordPartsSent
from acf.ports.store import Store


async def test_undelivered_in_commit_and_position_order(store: Store) -> None:
    first = [EnqueueReply("s1", "turnA", i, {"text": f"a{i}"}, 1_000) for i in range(2)]
    second = [EnqueueReply("s1", "turnB", 0, {"text": "b0"}, 2_000)]
    await store.uow.commit("t1", first)
    await store.uow.commit("t1", second)
    rows = await store.outbox.undelivered("t1", "s1")
    assert [r.payload["text"] for r in rows] == ["a0", "a1", "b0"]
    assert all(r.status is DeliveryStatus.PENDING and r.attempts == 0 for r in rows)


async def test_attempts_and_monotonic_statuses(store: Store) -> None:
    op = EnqueueReply("s1", "turnA", 0, {"text": "hi"}, 1_000)
    oid = (await store.uow.commit("t1", [op])).get(op)
    attempt = RecordAttempt(oid, 1_100)
    assert (await store.uow.commit("t1", [attempt])).get(attempt) == 1

    async def apply(status: DeliveryStatus, **kw: str) -> bool:
        o = ApplyDeliveryStatus(oid, status, 1_200, **kw)
        return (await store.uow.commit("t1", [o])).get(o)

    assert await apply(DeliveryStatus.SENT, provider_message_id="wamid.1")
    assert await apply(DeliveryStatus.READ)
    assert not await apply(DeliveryStatus.DELIVERED)  # late, out of order: ignored
    assert not await apply(DeliveryStatus.READ)  # repeated: no change
    row = await store.outbox.get("t1", oid)
    assert row is not None
    assert (row.status, row.provider_message_id, row.attempts) == (
        DeliveryStatus.READ,
        "wamid.1",
        1,
    )
    assert await store.outbox.undelivered("t1", "s1") == []
    assert await store.outbox.find_by_provider_id("t1", "wamid.1") == row
    assert [r.outbox_id for r in await store.outbox.for_session("t1", "s1")] == [oid]
    assert [r.outbox_id for r in await store.outbox.for_session("t1", "s1", last=1)] == [oid]


async def test_failed_is_terminal(store: Store) -> None:
    op = EnqueueReply("s1", "turnA", 0, {"text": "hi"}, 1_000)
    oid = (await store.uow.commit("t1", [op])).get(op)
    failed = ApplyDeliveryStatus(oid, DeliveryStatus.FAILED, 1_100, error="131047")
    assert (await store.uow.commit("t1", [failed])).get(failed)
    late = ApplyDeliveryStatus(oid, DeliveryStatus.DELIVERED, 1_200)
    assert not (await store.uow.commit("t1", [late])).get(late)
    row = await store.outbox.get("t1", oid)
    assert row is not None and row.status is DeliveryStatus.FAILED and row.error == "131047"


async def test_for_session_last_rows_in_order(store: Store) -> None:
    ops = [EnqueueReply("s1", f"turn{i}", 0, {"text": str(i)}, 1_000 + i) for i in range(3)]
    results = await store.uow.commit("t1", ops)
    ids = [results.get(op) for op in ops]
    assert [r.outbox_id for r in await store.outbox.for_session("t1", "s1", last=2)] == ids[1:]
    assert [r.outbox_id for r in await store.outbox.for_session("t1", "s1")] == ids


async def test_a_guarded_stale_status_commits_nothing_of_its_unit(store: Store) -> None:
    op = EnqueueReply("s1", "turnA", 0, {"text": "hi"}, 1_000)
    oid = (await store.uow.commit("t1", [op])).get(op)
    read = ApplyDeliveryStatus(oid, DeliveryStatus.READ, 1_100, "wamid.9", guard=True)
    assert (await store.uow.commit("t1", [read])).get(read)
    late = ApplyDeliveryStatus(oid, DeliveryStatus.DELIVERED, 1_200, guard=True)
    second = EnqueueReply("s1", "turnB", 0, {"text": "never"}, 1_200)
    with pytest.raises(Conflict):
        await store.uow.commit("t1", [late, second])
    rows = await store.outbox.for_session("t1", "s1")
    assert [(r.outbox_id, r.status) for r in rows] == [(oid, DeliveryStatus.READ)]


async def test_parts_sent_only_grow(store: Store) -> None:
    op = EnqueueReply("s1", "turnA", 0, {"text": "long"}, 1_000)
    oid = (await store.uow.commit("t1", [op])).get(op)
    await store.uow.commit("t1", [RecordPartsSent(oid, 2, 1_100)])
    await store.uow.commit("t1", [RecordPartsSent(oid, 1, 1_200), RecordPartsSent(oid, 0, 1_300)])
    row = await store.outbox.get("t1", oid)
    assert row is not None and row.parts_sent == 3
    with pytest.raises(Conflict):
        await store.uow.commit("t1", [RecordPartsSent(oid + 1000, 1, 1_400)])
