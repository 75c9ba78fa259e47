"""Contract: Identities (linked addresses, session routes) and the fallback copy's write."""

import asyncio
from typing import Any

import pytest

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import ROUTE_TTL_MS, Route
from acf.domain.signals import DeliveryStatus
from acf.ports.event_store import EventQuery
from acf.ports.identities import AddressTaken, LinkIdentities, RouteToSession, UnlinkIdentity
from acf.ports.outbox import ApplyDeliveryStatus, EnqueueFallback, EnqueueReply, RecordAttempt
from acf.ports.store import Store
from tests.contract.helpers import append, key

WA = Route(Channel.WHATSAPP, "15550001")
SMS = Route(Channel.SMS, "+15550001")
MAIL = Route(Channel.EMAIL, "ana@example.com")


async def fallback_events(store: Store, expected: int) -> list[FabricEvent]:
    """The ``response.fallback`` events, once ``expected`` are visible (PostgreSQL shows
    events in commit order, so a transaction still open anywhere on the server may hold
    them back for a moment)."""
    deadline = asyncio.get_running_loop().time() + 10
    query = EventQuery(kinds=(EventKind.RESPONSE_FALLBACK,))
    while True:
        found = await store.events.query("t1", query)
        if len(found) >= expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.02)


async def link(store: Store, customer: str, *routes: Route, tenant: str = "t1") -> int:
    op = LinkIdentities(customer, routes, 1_000)
    return (await store.uow.commit(tenant, [op])).get(op)


async def test_link_read_and_unlink(store: Store) -> None:
    assert await link(store, "ana", WA, SMS) == 2
    assert await link(store, "ana", SMS, MAIL) == 1  # SMS was hers already: unchanged
    mine = await store.identities.of_customer("t1", "ana")
    assert [i.route for i in mine] == [MAIL, SMS, WA]  # by channel, then address
    assert await store.identities.owner("t1", SMS) == "ana"
    assert await store.identities.linked("t1", WA) == {
        Channel.WHATSAPP: WA.address,
        Channel.SMS: SMS.address,
        Channel.EMAIL: MAIL.address,
    }
    assert await store.identities.linked("t1", Route(Channel.SMS, "+1999")) == {}
    unlink = UnlinkIdentity("ana", MAIL)
    assert (await store.uow.commit("t1", [unlink])).get(unlink)
    assert not (await store.uow.commit("t1", [unlink])).get(unlink)  # already gone
    not_hers = UnlinkIdentity("bob", SMS)
    assert not (await store.uow.commit("t1", [not_hers])).get(not_hers)
    assert await store.identities.owner("t1", SMS) == "ana"
    assert await store.identities.owner("t1", MAIL) is None


async def test_an_address_belongs_to_one_customer_and_a_refused_link_links_nothing(
    store: Store,
) -> None:
    await link(store, "ana", WA)
    with pytest.raises(AddressTaken, match="ana"):
        await link(store, "bob", SMS, WA)
    assert await store.identities.of_customer("t1", "bob") == []  # SMS was not linked either
    assert await store.identities.owner("t1", SMS) is None


async def test_two_customers_racing_for_one_address_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(link(store, name, SMS) for name in ("ana", "bob", "cy")), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["AddressTaken", "AddressTaken", "int"]
    owner = await store.identities.owner("t1", SMS)
    assert [i.customer_id for i in await store.identities.of_customer("t1", str(owner))] == [owner]


async def test_a_routed_address_joins_the_session_with_its_own_channel_and_address(
    store: Store,
) -> None:
    wa = key(customer=WA.address, channel=Channel.WHATSAPP)
    first = await append(store, wa, "wamid.1", "my order?")
    route = RouteToSession(wa.agent, SMS, first.session_id, 1_100)
    await store.uow.commit("t1", [route])
    assert await store.identities.routed_session("t1", SMS, 1_200) == first.session_id
    sms = key(customer=SMS.address, channel=Channel.SMS)
    reply = await append(store, sms, "SM1", "still waiting")
    assert (reply.session_id, reply.seq) == (first.session_id, 2)
    stored = await store.messages.read_range("t1", first.session_id, 0, 2)
    assert [(m.key.channel, m.key.customer) for m in stored] == [
        (Channel.WHATSAPP, WA.address),
        (Channel.SMS, SMS.address),
    ]
    assert await store.sessions.find_open("t1", sms) is None  # no SMS session was opened


async def test_a_route_to_a_closed_session_is_not_followed(store: Store) -> None:
    wa = key(customer=WA.address)
    first = await append(store, wa, "wamid.1")
    await store.uow.commit("t1", [RouteToSession(wa.agent, SMS, first.session_id, 1_100)])
    db: Any = store.db  # type: ignore[attr-defined]
    await db.write(
        "t1",
        lambda conn: conn.execute(
            "UPDATE sessions SET status = 'closed' WHERE tenant = ? AND session_id = ?",
            ("t1", first.session_id),
        ),
    )
    reply = await append(store, key(customer=SMS.address, channel=Channel.SMS), "SM1")
    assert reply.session_id != first.session_id and reply.seq == 1


async def _session_with_rows(store: Store, count: int) -> tuple[str, list[int]]:
    first = await append(store, key(customer=WA.address), "wamid.1")
    ops = [
        EnqueueReply(first.session_id, "turn-1", i, {"text": f"r{i}"}, 1_000) for i in range(count)
    ]
    results = await store.uow.commit("t1", ops)
    return first.session_id, [results.get(op) for op in ops]


def _fallback(failed: int, tried: tuple[str, ...] = ("whatsapp",)) -> EnqueueFallback:
    return EnqueueFallback(
        failed,
        SMS,
        tried,
        "whatsapp refused",
        Correlation("t1", "trace-9", turn_id="turn-1"),
        2_000,
    )


async def test_a_fallback_copy_takes_its_originals_place_once(store: Store) -> None:
    session_id, (r0, r1) = await _session_with_rows(store, 2)
    attempt = RecordAttempt(r0, 1_500, WA)
    await store.uow.commit("t1", [attempt, RecordAttempt(r0, 1_600, SMS)])
    row = await store.outbox.get("t1", r0)
    assert row is not None and row.route == WA  # the first attempt's address stays
    op = _fallback(r0)
    await store.uow.commit("t1", [ApplyDeliveryStatus(r0, DeliveryStatus.FAILED, 2_000), op])
    rows = await store.outbox.undelivered("t1", session_id)
    copy = rows[0]
    assert [r.outbox_id for r in rows] == [copy.outbox_id, r1] and copy.outbox_id > r1
    assert (copy.route, copy.fallback_of, copy.turn_id, copy.position) == (SMS, r0, "turn-1", 0)
    assert copy.payload["text"] == "r0"
    assert copy.payload["fallback"] == {"of": r0, "tried": ["whatsapp"]}
    assert await store.identities.routed_session("t1", SMS, 2_100) == session_id
    with pytest.raises(Conflict, match="already has its fallback copy"):
        await store.uow.commit("t1", [_fallback(r0)])
    events = await fallback_events(store, 1)
    assert len(events) == 1
    assert events[0].data == {
        "outbox_id": r0,
        "fallback_outbox_id": copy.outbox_id,
        "turn_id": "turn-1",
        "position": 0,
        "from": WA.as_payload(),
        "to": SMS.as_payload(),
        "reason": "whatsapp refused",
    }
    assert events[0].correlation.trace_id == "trace-9"
    # The copy of the copy keeps the original's place too.
    second = EnqueueFallback(
        copy.outbox_id, MAIL, ("whatsapp", "sms"), "sms refused", Correlation("t1", "t"), 3_000
    )
    await store.uow.commit("t1", [second])
    order = [r.route for r in await store.outbox.undelivered("t1", session_id)]
    assert order == [SMS, MAIL, None]


async def test_concurrent_fallbacks_of_one_row_queue_one_copy(store: Store) -> None:
    session_id, (r0,) = await _session_with_rows(store, 1)
    results = await asyncio.gather(
        *(store.uow.commit("t1", [_fallback(r0)]) for _ in range(4)), return_exceptions=True
    )
    assert sum(isinstance(r, Conflict) for r in results) == 3
    copies = [r for r in await store.outbox.for_session("t1", session_id) if r.fallback_of]
    assert len(copies) == 1
    assert len(await fallback_events(store, 1)) == 1


async def test_a_route_serves_any_agent_and_expires(store: Store) -> None:
    sales = key(customer=WA.address, channel=Channel.WHATSAPP, agent="sales")
    first = await append(store, sales, "wamid.s1", "a quote please")
    await store.uow.commit("t1", [RouteToSession("sales", SMS, first.session_id, 1_100)])
    # The SMS account answers with another agent: the answer still joins the sales session.
    support_sms = key(customer=SMS.address, channel=Channel.SMS, agent="support")
    joined = await append(store, support_sms, "SM1", "yes, send it", at_ms=1_200)
    assert (joined.session_id, joined.seq) == (first.session_id, 2)
    # Past the route's lifetime the address is a conversation of its own again.
    later = 1_100 + ROUTE_TTL_MS
    assert await store.identities.routed_session("t1", SMS, later - 1) == first.session_id
    assert await store.identities.routed_session("t1", SMS, later) is None
    alone = await append(store, support_sms, "SM2", "new question", at_ms=later + 5)
    assert alone.session_id != first.session_id


async def test_an_unlinked_address_stops_joining_the_customers_session(store: Store) -> None:
    await link(store, "ana", WA, SMS)
    wa = key(customer=WA.address, channel=Channel.WHATSAPP)
    first = await append(store, wa, "wamid.u1", "hi")
    await store.uow.commit("t1", [RouteToSession(wa.agent, SMS, first.session_id, 1_100)])
    unlink = UnlinkIdentity("ana", SMS)
    assert (await store.uow.commit("t1", [unlink])).get(unlink)
    assert await store.identities.routed_session("t1", SMS, 1_200) is None
    stranger = await append(store, key(customer=SMS.address, channel=Channel.SMS), "SM9", "hi")
    assert stranger.session_id != first.session_id
