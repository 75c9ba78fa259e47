"""The lease keeper renews in time, keeps a lease it renews late, and says so only when the
store says the lease is gone."""

import asyncio
from pathlib import Path

from acf.adapters.sqlite import open_sqlite_store
from acf.ports.store import Store
from acf.service.lease_keeper import LeaseKeeper, LeaseSettings
from acf.service.tasks import TaskSet
from acf.testing import VirtualClock

SETTINGS = LeaseSettings(ttl_ms=3_000, renew_every_ms=1_000)


async def _tick(clock: VirtualClock, ms: int) -> None:
    clock.advance(ms)
    for _ in range(20):
        await asyncio.sleep(0.001)


async def _keep(store: Store, clock: VirtualClock, tasks: TaskSet) -> LeaseKeeper:
    claiming = store.claims.claim_session("t1", "s1", "me", SETTINGS.ttl_ms)
    held = await LeaseKeeper.claim(store.lease, clock, SETTINGS, tasks, claiming)
    assert held is not None
    keeper, claim = held
    assert keeper.held and keeper.lease == claim.lease
    return keeper


async def test_renews_while_held_and_reports_loss(store: Store, clock: VirtualClock) -> None:
    tasks = TaskSet()
    keeper = await _keep(store, clock, tasks)
    start = clock.now_ms()
    for _ in range(5):
        await _tick(clock, 1_000)
    current = await store.lease.current("t1", "s1")
    assert current is not None and current.expires_at_ms == start + 5_000 + 3_000
    assert keeper.held
    # Someone else takes it (as if ours had expired): the next renewal fails.
    await store.db.write(  # type: ignore[attr-defined]
        "t1", lambda conn: conn.execute("UPDATE session_leases SET expires_at_ms = 0")
    )
    assert await store.lease.acquire("t1", "s1", "intruder", 3_000) is not None
    await _tick(clock, 1_000)
    assert not keeper.held
    await tasks.cancel_all()


async def test_a_busy_process_that_renews_after_expiry_keeps_its_lease(
    store: Store, clock: VirtualClock
) -> None:
    """The process could not run for 10 s (three TTLs): nobody took the lease, so the late
    renewal succeeds and the holder goes on (issue 17)."""
    tasks = TaskSet()
    keeper = await _keep(store, clock, tasks)
    await _tick(clock, 0)  # the keeper waits for its first renewal
    clock.advance(10_000)  # no await in between: nothing else ran meanwhile
    assert await store.lease.current("t1", "s1") is None  # expired, as others see it
    await _tick(clock, 0)
    assert keeper.held
    current = await store.lease.current("t1", "s1")
    assert current is not None and current.fence == keeper.fence
    assert current.expires_at_ms == clock.now_ms() + SETTINGS.ttl_ms
    await tasks.cancel_all()


async def test_an_unreachable_store_does_not_lose_the_lease(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Only the store's answer loses a lease: while it cannot answer, the holder can write
    nothing anyway, and keeps trying."""
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    tasks = TaskSet()
    keeper = await _keep(store, clock, tasks)
    await store.close()
    await _tick(clock, 1_000)
    await _tick(clock, 1_000)
    assert keeper.held
    await tasks.cancel_all()


async def test_outside_effects_stop_once_the_lease_may_have_expired_by_our_own_clock(
    store: Store, clock: VirtualClock
) -> None:
    """A provider send cannot be fenced: a holder whose renewal is late (it may have been
    taken over without knowing it) must not send, though its fenced writes stay allowed;
    once a renewal succeeds it may again."""
    tasks = TaskSet()
    keeper = await _keep(store, clock, tasks)
    await _tick(clock, 0)  # the keeper waits for its first renewal
    assert keeper.may_act_outside()
    clock.advance(int(SETTINGS.ttl_ms * 0.8) + 1)  # stalled: no renewal ran meanwhile
    assert keeper.held and not keeper.may_act_outside()
    await _tick(clock, 0)  # the pending renewal runs now, late, and succeeds
    assert keeper.held and keeper.may_act_outside()
    await tasks.cancel_all()
