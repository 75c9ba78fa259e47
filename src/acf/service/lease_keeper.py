"""Holding a session lease: renew it in the background, and say when it is lost.

The holder must stop writing before the lease can expire: if a renewal has not succeeded
by expiry minus a safety margin (measured on the monotonic clock from when the last
successful renewal was requested), ``lost`` is set and the holder cancels its pipeline.
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from acf.ports.clock import Clock
from acf.ports.lease import Lease, SessionLease
from acf.service.tasks import TaskSet


class _Claim(Protocol):
    @property
    def lease(self) -> Lease: ...


C = TypeVar("C", bound=_Claim)


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    ttl_ms: int = 15_000
    renew_every_ms: int = 5_000
    safety_margin_ms: int = 3_000

    def __post_init__(self) -> None:
        if not 0 < self.renew_every_ms < self.ttl_ms - self.safety_margin_ms:
            raise ValueError("lease: expected 0 < renew_every_ms < ttl_ms - safety_margin_ms")


class LeaseKeeper:
    def __init__(
        self,
        leases: SessionLease,
        clock: Clock,
        settings: LeaseSettings,
        tasks: TaskSet,
        lease: Lease,
        requested_at: float,
    ) -> None:
        self._leases = leases
        self._clock = clock
        self._settings = settings
        self.lease = lease
        self.lost = asyncio.Event()
        self._safe_until = requested_at + (settings.ttl_ms - settings.safety_margin_ms) / 1000
        self._task = tasks.spawn(self._renew_loop(), f"lease:{lease.session_id}")

    @classmethod
    async def claim(
        cls,
        leases: SessionLease,
        clock: Clock,
        settings: LeaseSettings,
        tasks: TaskSet,
        claiming: Awaitable[C | None],
    ) -> "tuple[LeaseKeeper, C] | None":
        """Await ``claiming`` (a ``Claims`` call, or anything giving a ``.lease``) and keep
        the lease it took; ``None`` when another holder has it. The safety margin counts
        from before the request was made."""
        requested_at = clock.monotonic()
        claim = await claiming
        if claim is None:
            return None
        return cls(leases, clock, settings, tasks, claim.lease, requested_at), claim

    @property
    def fence(self) -> int:
        return self.lease.fence

    @property
    def held(self) -> bool:
        return not self.lost.is_set()

    async def _renew_loop(self) -> None:
        try:
            while True:
                await self._clock.sleep(self._settings.renew_every_ms / 1000)
                if not await self._renew_once():
                    self.lost.set()
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the store failed: we cannot know that we still hold it
            self.lost.set()

    async def _renew_once(self) -> bool:
        requested_at = self._clock.monotonic()
        loop = asyncio.get_running_loop()
        renewal = loop.create_task(self._leases.renew(self.lease, self._settings.ttl_ms))
        limit = loop.create_task(
            self._clock.sleep(max(0.0, self._safe_until - self._clock.monotonic()))
        )
        try:
            await asyncio.wait({renewal, limit}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            limit.cancel()
        if not renewal.done():
            renewal.cancel()
            return False
        renewed = renewal.result()
        if renewed is None or self._clock.monotonic() >= self._safe_until:
            return False
        self.lease = renewed
        self._safe_until = (
            requested_at + (self._settings.ttl_ms - self._settings.safety_margin_ms) / 1000
        )
        return True

    async def release(self) -> None:
        """Stop renewing and give the lease up (best effort: it expires anyway)."""
        self._task.cancel()
        self.lost.set()
        with contextlib.suppress(Exception):
            await self._leases.release(self.lease)

    def abandon(self) -> None:
        """Stop renewing without writing anything (the lease expires on its own)."""
        self._task.cancel()
        self.lost.set()
