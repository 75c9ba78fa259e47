"""Holding a session lease: renew it in the background, and say when it is lost.

A lease is lost only when the store says so: a renewal refused because another holder took
the lease over (its fence grew) or it was released. A renewal that comes late — the process
was busy, the lease expired meanwhile — still succeeds while nobody took the lease, and
every write is fenced, so lateness costs time, never the work (issue 17). A store that
cannot be reached is tried again at the next interval: while it is away the holder can
write nothing anyway, and a holder that was taken over meanwhile learns it at the next
renewal or at its next fenced write.

An effect outside the store (a provider send) cannot be fenced: a holder that stalled past
its TTL may have been taken over without knowing it yet, and would send what the new holder
sends too. ``may_act_outside`` is the guard for such effects: it also requires that the
lease cannot have expired by this process's own monotonic clock — counted from when the
last successful renewal (or the claim) was requested, up to ``OUTSIDE_SHARE`` of the TTL.
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from acf.observability.redaction import error_text
from acf.ports.clock import Clock
from acf.ports.lease import Lease, SessionLease
from acf.service.tasks import TaskSet

log = structlog.get_logger("acf.runtime")

OUTSIDE_SHARE = 0.8
"""The share of the TTL, from the last successful renewal's request, during which a holder
may still act outside the store (the rest is the margin for clocks and scheduling)."""


class _Claim(Protocol):
    @property
    def lease(self) -> Lease: ...


C = TypeVar("C", bound=_Claim)


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    ttl_ms: int = 15_000
    """How long a holder may go without renewing before another process may take over."""
    renew_every_ms: int = 5_000

    def __post_init__(self) -> None:
        if not 0 < self.renew_every_ms < self.ttl_ms:
            raise ValueError("lease: expected 0 < renew_every_ms < ttl_ms")


class LeaseKeeper:
    def __init__(
        self,
        leases: SessionLease,
        clock: Clock,
        settings: LeaseSettings,
        tasks: TaskSet,
        lease: Lease,
        requested_at: float | None = None,
    ) -> None:
        self._leases = leases
        self._clock = clock
        self._settings = settings
        self.lease = lease
        self.lost = asyncio.Event()
        self._renewed_at = requested_at if requested_at is not None else clock.monotonic()
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
        the lease it took; ``None`` when another holder has it."""
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

    def may_act_outside(self) -> bool:
        """Held, and not expired by this process's own clock: the guard for an effect that no
        fence can stop (a provider send). False while a late renewal is still pending; true
        again once one succeeds."""
        share = self._settings.ttl_ms * OUTSIDE_SHARE / 1000
        return self.held and self._clock.monotonic() < self._renewed_at + share

    async def _renew_loop(self) -> None:
        while True:
            await self._clock.sleep(self._settings.renew_every_ms / 1000)
            requested_at = self._clock.monotonic()
            try:
                renewed = await self._leases.renew(self.lease, self._settings.ttl_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: its answer decides, not our guess
                log.warning(
                    "lease.renew_failed",
                    tenant=self.lease.tenant,
                    session_id=self.lease.session_id,
                    error=error_text(exc),
                )
                continue
            if renewed is None:  # taken over, or released: the store says it is not ours
                self.lost.set()
                return
            self.lease = renewed
            self._renewed_at = requested_at

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
