"""The lease keeper renews in time and says so when the lease is gone."""

import asyncio
from dataclasses import dataclass

from acf.ports.lease import Lease
from acf.ports.store import Store
from acf.service.lease_keeper import LeaseKeeper, LeaseSettings
from acf.service.tasks import TaskSet
from acf.testing import VirtualClock


@dataclass(frozen=True)
class Claimed:
    lease: Lease


SETTINGS = LeaseSettings(ttl_ms=3_000, renew_every_ms=1_000, safety_margin_ms=500)


async def _tick(clock: VirtualClock, ms: int) -> None:
    clock.advance(ms)
    for _ in range(20):
        await asyncio.sleep(0.001)


async def test_renews_while_held_and_reports_loss(store: Store, clock: VirtualClock) -> None:
    tasks = TaskSet()
    claiming = store.claims.claim_session("t1", "s1", "me", SETTINGS.ttl_ms)
    held = await LeaseKeeper.claim(store.lease, clock, SETTINGS, tasks, claiming)
    assert held is not None
    keeper, claim = held
    assert keeper.held and keeper.lease == claim.lease
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


async def test_a_renewal_that_hangs_past_the_margin_loses_the_lease(clock: VirtualClock) -> None:
    class Hanging:
        async def renew(self, lease: object, ttl_ms: int) -> None:
            await asyncio.Event().wait()

    async def claiming() -> Claimed:
        return Claimed(Lease("t1", "s1", "me", 1, clock.now_ms() + 3_000))

    tasks = TaskSet()
    held = await LeaseKeeper.claim(Hanging(), clock, SETTINGS, tasks, claiming())  # type: ignore[arg-type]
    assert held is not None
    keeper = held[0]
    await _tick(clock, 1_000)  # renewal starts and hangs
    assert keeper.held
    await _tick(clock, 1_499)  # 2499 ms: still inside ttl - margin
    assert keeper.held
    await _tick(clock, 1)  # 2500 ms = ttl - margin: stop before the lease can expire
    assert not keeper.held
    await tasks.cancel_all()
