"""Contract: Claims, a lease taken and what it guards read in one transaction."""

import asyncio

from acf.ports.lease import delivery_lease_id
from acf.ports.outbox import EnqueueReply
from acf.ports.store import Store
from acf.ports.turn_store import CreateTurn
from acf.testing import VirtualClock
from tests.contract.helpers import append, key, turn


async def test_a_session_claim_is_the_lease_with_the_session_and_its_live_turn(
    store: Store, clock: VirtualClock
) -> None:
    k = key()
    first = await append(store, k, text="one")
    await append(store, k, text="two")
    live = turn("t1", first.session_id, to_seq=2)
    await store.uow.commit("t1", [CreateTurn(live)])

    claim = await store.claims.claim_session("t1", first.session_id, "worker-a", 1_000)

    assert claim is not None
    assert claim.lease == await store.lease.current("t1", first.session_id)
    assert (claim.lease.holder, claim.lease.fence) == ("worker-a", 1)
    assert claim.session is not None
    assert (claim.session.session_id, claim.session.last_seq) == (first.session_id, 2)
    assert claim.live == live


async def test_a_session_claim_has_the_lease_s_guarantees(
    store: Store, clock: VirtualClock
) -> None:
    claims = await asyncio.gather(
        *(store.claims.claim_session("t1", "s1", f"w{i}", 1_000) for i in range(10))
    )
    won = [c for c in claims if c is not None]
    assert len(won) == 1  # one winner; the losers read nothing
    assert won[0].session is None and won[0].live is None  # no such session yet
    assert await store.lease.acquire("t1", "s1", "other", 1_000) is None
    clock.advance(1_000)
    again = await store.claims.claim_session("t1", "s1", "w-next", 1_000)
    assert again is not None and again.lease.fence == 2  # the fence grows


async def test_a_delivery_claim_is_the_delivery_lease_with_the_rows_to_send(
    store: Store, clock: VirtualClock
) -> None:
    k = key()
    appended = await append(store, k, text="hello")
    await append(store, k, text="newest")
    sid = appended.session_id
    await store.uow.commit(
        "t1", [EnqueueReply(sid, "turnA", i, {"text": f"a{i}"}, 1_000) for i in range(2)]
    )
    session_lease = await store.lease.acquire("t1", sid, "turn-runner", 1_000)
    assert session_lease is not None  # the relay runs outside the session lease

    claim = await store.claims.claim_delivery("t1", sid, "relay-a", 1_000)

    assert claim is not None
    assert claim.lease.session_id == delivery_lease_id(sid)
    assert claim.lease == await store.lease.current("t1", delivery_lease_id(sid))
    assert [r.payload["text"] for r in claim.rows] == ["a0", "a1"]
    assert claim.session is not None and claim.session.key == k
    assert claim.newest is not None and claim.newest.text == "newest"
    # One relay per session: a second claim gets nothing while this one is live.
    assert await store.claims.claim_delivery("t1", sid, "relay-b", 1_000) is None


async def test_a_delivery_claim_of_a_session_without_rows_or_messages(store: Store) -> None:
    claim = await store.claims.claim_delivery("t1", "nobody", "relay", 1_000)
    assert claim is not None
    assert (claim.rows, claim.session, claim.newest) == ([], None, None)
