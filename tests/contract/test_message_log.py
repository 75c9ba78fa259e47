"""Contract: MessageLog and the AppendMessage write."""

import asyncio

from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.ports.event_store import EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key


async def test_append_assigns_gapless_sequence_and_advances_last_seq(store: Store) -> None:
    k = key()
    results = [await append(store, k, f"wamid.{i}", f"part {i}") for i in range(3)]
    assert [r.seq for r in results] == [1, 2, 3]
    assert len({r.session_id for r in results}) == 1
    assert not any(r.duplicate for r in results)
    session = await store.sessions.get("t1", results[0].session_id)
    assert session is not None
    assert (session.last_seq, session.consumed_seq) == (3, 0)


async def test_duplicate_returns_original_identity_and_is_recorded(store: Store) -> None:
    k = key()
    first = await append(store, k, "wamid.X", "refund please")
    again = await append(store, k, "wamid.X", "refund please")
    assert again.duplicate
    assert (again.message_id, again.session_id, again.seq) == (
        first.message_id,
        first.session_id,
        first.seq,
    )
    session = await store.sessions.get("t1", first.session_id)
    assert session is not None and session.last_seq == 1
    await readable(store)
    kinds = [e.kind for e in await store.events.query("t1", EventQuery())]
    assert kinds == [EventKind.MESSAGE_RECEIVED, EventKind.MESSAGE_DUPLICATE]


async def test_fifty_concurrent_deliveries_store_one_row_one_seq(store: Store) -> None:
    """DESIGN §3 invariant 2: dedupe is atomic under concurrency."""
    k = key()
    results = await asyncio.gather(*(append(store, k, "wamid.SAME") for _ in range(50)))
    assert len({(r.message_id, r.seq) for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    rows = await store.messages.read_range("t1", results[0].session_id, 0, 100)
    assert [m.seq for m in rows] == [1]
    session = await store.sessions.get("t1", results[0].session_id)
    assert session is not None and session.last_seq == 1


async def test_concurrent_distinct_messages_get_distinct_gapless_seqs(store: Store) -> None:
    k = key()
    results = await asyncio.gather(*(append(store, k, f"m{i}") for i in range(50)))
    assert sorted(r.seq for r in results) == list(range(1, 51))


async def test_same_provider_id_on_another_channel_is_not_a_duplicate(store: Store) -> None:
    a = await append(store, key(channel=Channel.WHATSAPP), "id-1")
    b = await append(store, key(channel=Channel.SMS), "id-1")
    assert not b.duplicate and a.session_id != b.session_id


async def test_message_round_trips_every_field(store: Store) -> None:
    k = key(customer="tg:42:weird/id")
    msg = NewMessage(
        key=k,
        provider_message_id="p-1",
        text="see photo",
        button=ButtonReply("yes", "Yes"),
        media=(MediaRef("media-9", "image/jpeg", "cap"),),
        provider_timestamp_ms=123,
        sender_name="Ana",
    )
    op = AppendMessage(msg, 5_000, "tr")
    result = (await store.uow.commit("t1", [op])).get(op)
    stored = await store.messages.get("t1", result.message_id)
    assert stored is not None
    assert stored.key == k
    assert (stored.text, stored.button, stored.media) == (msg.text, msg.button, msg.media)
    assert (stored.provider_timestamp_ms, stored.sender_name, stored.received_at_ms) == (
        123,
        "Ana",
        5_000,
    )
    found = await store.messages.find_by_provider_id("t1", Channel.WHATSAPP, "p-1")
    assert found == stored


async def test_read_range_and_recent(store: Store) -> None:
    k = key()
    results = [await append(store, k, f"m{i}", f"t{i}") for i in range(5)]
    sid = results[0].session_id
    assert [m.seq for m in await store.messages.read_range("t1", sid, 1, 4)] == [2, 3, 4]
    assert [m.seq for m in await store.messages.recent("t1", sid, 5, 2)] == [4, 5]
    assert await store.messages.read_range("t1", sid, 5, 9) == []
