"""Contract: SessionLease and the CheckFence guard."""

import asyncio

import pytest

from acf.domain.errors import Conflict
from acf.ports.lease import CheckFence
from acf.ports.store import Store
from acf.testing import VirtualClock


async def test_exclusive_until_expiry_with_growing_fence(store: Store, clock: VirtualClock) -> None:
    a = await store.lease.acquire("t1", "s1", "worker-a", 1_000)
    assert a is not None and a.fence == 1
    assert await store.lease.acquire("t1", "s1", "worker-b", 1_000) is None
    assert await store.lease.current("t1", "s1") == a
    clock.advance(1_000)
    assert await store.lease.current("t1", "s1") is None
    b = await store.lease.acquire("t1", "s1", "worker-b", 1_000)
    assert b is not None and b.fence == 2
    assert await store.lease.renew(a, 1_000) is None  # the old holder lost it


async def test_concurrent_acquires_have_one_winner(store: Store) -> None:
    leases = await asyncio.gather(
        *(store.lease.acquire("t1", "s1", f"w{i}", 5_000) for i in range(20))
    )
    assert sum(lease is not None for lease in leases) == 1


async def test_renew_extends_and_release_frees(store: Store, clock: VirtualClock) -> None:
    a = await store.lease.acquire("t1", "s1", "w", 1_000)
    assert a is not None
    clock.advance(900)
    renewed = await store.lease.renew(a, 1_000)
    assert renewed is not None and renewed.expires_at_ms == clock.now_ms() + 1_000
    clock.advance(900)
    assert await store.lease.current("t1", "s1") is not None
    await store.lease.release(renewed)
    assert await store.lease.current("t1", "s1") is None
    nxt = await store.lease.acquire("t1", "s1", "w2", 1_000)
    assert nxt is not None and nxt.fence == 2  # fences never repeat after a release


async def test_check_fence_guard(store: Store, clock: VirtualClock) -> None:
    a = await store.lease.acquire("t1", "s1", "w", 1_000)
    assert a is not None
    await store.uow.commit("t1", [CheckFence("s1", a.fence, clock.now_ms())])
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [CheckFence("s1", a.fence + 1, clock.now_ms())])
    with pytest.raises(Conflict, match="fence"):  # never leased
        await store.uow.commit("t1", [CheckFence("s2", 1, clock.now_ms())])


async def test_an_expired_lease_nobody_took_still_guards_its_holder_s_writes(
    store: Store, clock: VirtualClock
) -> None:
    """Expiry only lets another holder take over; until one does, the fence is unchanged and
    the (slow) holder's writes and renewals go through (issue 17)."""
    a = await store.lease.acquire("t1", "s1", "w", 1_000)
    assert a is not None
    clock.advance(5_000)
    assert await store.lease.current("t1", "s1") is None  # expired, as others see it
    await store.uow.commit("t1", [CheckFence("s1", a.fence, clock.now_ms())])
    renewed = await store.lease.renew(a, 1_000)
    assert renewed is not None and renewed.fence == a.fence
    assert renewed.expires_at_ms == clock.now_ms() + 1_000
    assert await store.lease.current("t1", "s1") == renewed
    assert await store.lease.acquire("t1", "s1", "other", 1_000) is None  # live again


async def test_a_take_over_refuses_the_old_holder_s_renewals_and_writes(
    store: Store, clock: VirtualClock
) -> None:
    a = await store.lease.acquire("t1", "s1", "w", 1_000)
    assert a is not None
    clock.advance(1_000)
    b = await store.lease.acquire("t1", "s1", "other", 1_000)
    assert b is not None and b.fence == a.fence + 1
    assert await store.lease.renew(a, 1_000) is None
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [CheckFence("s1", a.fence, clock.now_ms())])
    await store.uow.commit("t1", [CheckFence("s1", b.fence, clock.now_ms())])
    clock.advance(5_000)  # the new holder is slow too: still its lease, not the old one's
    assert await store.lease.renew(a, 1_000) is None
    assert await store.lease.renew(b, 1_000) is not None


async def test_a_released_lease_guards_nothing_and_cannot_be_renewed(
    store: Store, clock: VirtualClock
) -> None:
    a = await store.lease.acquire("t1", "s1", "w", 1_000)
    assert a is not None
    await store.lease.release(a)
    assert await store.lease.renew(a, 1_000) is None
    with pytest.raises(Conflict, match="fence"):
        await store.uow.commit("t1", [CheckFence("s1", a.fence, clock.now_ms())])
