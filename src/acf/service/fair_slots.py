"""Fair work slots for one worker process: per-tenant and total caps, round-robin (§15).

``async with slots.slot(tenant):`` holds one slot while the body runs. Guarantees:

- At most ``per_tenant`` slots are held by one tenant and at most ``total`` in all; a slot
  handed to a waiter counts as held from that moment, before the waiter runs again.
  ``resize`` changes ``total`` (admission control); after a shrink, slots are granted
  again only once fewer than the new total are held.
- No caller waits while it could run: whenever capacity is free, every tenant that still
  has waiters is at its own cap.
- Waiters are served round-robin across tenants (one waiter per tenant in turn) and FIFO
  within a tenant. A tenant that gets a slot goes to the back of the line; a tenant skipped
  because it is at its own cap keeps its place. So a tenant that starts waiting gets a slot
  after at most one grant to each tenant already in line, however many they have queued.
- Cancelling a waiter removes it and leaks nothing; a waiter cancelled after it was handed
  a slot but before it ran gives the slot back, and the next waiter gets it. The body
  leaving by an exception or a cancellation frees its slot too.

Pure asyncio: use it from one event loop, no threads.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from acf.domain.ids import TenantId


class FairSlots:
    def __init__(self, total: int, per_tenant: int) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, got {total}")
        if per_tenant < 1:
            raise ValueError(f"per_tenant must be at least 1, got {per_tenant}")
        self.total = total
        self.per_tenant = per_tenant
        self._held: dict[TenantId, int] = {}
        self._held_total = 0
        # The waiters of each tenant with any, in round-robin order: the dict's order is
        # the line, a served tenant is re-inserted at its end. Cancelled futures may
        # linger until their waiter cleans up; they are skipped.
        self._line: dict[TenantId, deque[asyncio.Future[None]]] = {}

    def resize(self, total: int) -> None:
        """Change the total. Growing hands the new slots out at once; shrinking takes none
        back: slots held stay held, and no slot is granted until fewer than ``total`` are."""
        if total < 1:
            raise ValueError(f"total must be at least 1, got {total}")
        self.total = total
        self._grant()

    def in_use(self, tenant: TenantId) -> int:
        return self._held.get(tenant, 0)

    def waiting(self, tenant: TenantId) -> int:
        return sum(not f.done() for f in self._line.get(tenant, ()))

    def in_use_total(self) -> int:
        return self._held_total

    def waiting_total(self) -> int:
        return sum(self.waiting(tenant) for tenant in self._line)

    @asynccontextmanager
    async def slot(self, tenant: TenantId) -> AsyncIterator[None]:
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    async def _acquire(self, tenant: TenantId) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.setdefault(tenant, deque()).append(waiter)
        self._grant()  # free capacity goes out at once (possibly to this waiter)
        try:
            await waiter  # returns at once when already granted
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(tenant)  # handed a slot, cancelled before running: pass it on
            else:
                self._forget(tenant, waiter)
            raise

    def _release(self, tenant: TenantId) -> None:
        held = self._held[tenant] - 1
        if held:
            self._held[tenant] = held
        else:
            del self._held[tenant]
        self._held_total -= 1
        self._grant()

    def _forget(self, tenant: TenantId, waiter: asyncio.Future[None]) -> None:
        queue = self._line.get(tenant)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._line[tenant]

    def _grant(self) -> None:
        """Hand free slots to waiters, round-robin, until no capacity or no eligible one."""
        while self._held_total < self.total:
            picked = self._pick()
            if picked is None:
                return
            tenant, waiter = picked
            self._held[tenant] = self._held.get(tenant, 0) + 1
            self._held_total += 1
            waiter.set_result(None)

    def _pick(self) -> tuple[TenantId, asyncio.Future[None]] | None:
        for tenant, queue in list(self._line.items()):
            if self._held.get(tenant, 0) >= self.per_tenant:
                continue  # at its cap: keeps its place in line
            while queue and queue[0].done():
                queue.popleft()  # cancelled, its waiter has not cleaned up yet
            del self._line[tenant]
            if not queue:
                continue
            waiter = queue.popleft()
            if queue:
                self._line[tenant] = queue  # to the back of the line
            return tenant, waiter
        return None
