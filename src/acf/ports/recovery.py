"""Recovery scanner: the one read that crosses tenants, for start-up and continuous recovery.

It lists where work was left (DESIGN §4), the sessions that may close for idleness
(DESIGN §15) and the tenants the mode watch has to look at, and nothing else: ids, never
content. Everything the recovery or the idle
close then does goes through the tenant-scoped ports, under the session's lease. In
distributed mode it runs under the role allowed to see all tenants.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.ids import AgentId, SessionId, TenantId


@dataclass(frozen=True, slots=True)
class SessionWork:
    tenant: TenantId
    session_id: SessionId
    turns: bool
    """Unconsumed messages, a live (ACCUMULATING or RUNNING) turn, or a requested replay
    of a dead letter."""
    deliveries: bool
    """Outbox rows not yet accepted by the provider."""


@dataclass(frozen=True, slots=True)
class IdleSession:
    """An open session with nothing left to do, idle since ``idle_since_ms``."""

    tenant: TenantId
    session_id: SessionId
    agent: AgentId
    channel: Channel
    """Its channel: whose policy's ``idle_timeout_s`` applies."""
    idle_since_ms: int
    """The session row's ``updated_at_ms`` (its last message, committed turn or flag)."""

    @property
    def cursor(self) -> tuple[int, TenantId, SessionId]:
        """Where a scan that listed this session goes on (``idle_sessions(after=...)``)."""
        return (self.idle_since_ms, self.tenant, self.session_id)


@dataclass(frozen=True, slots=True)
class ModeWork:
    """A tenant the mode watch looks at (``acf.service.mode_watch``), and for what."""

    tenant: TenantId
    handoffs: bool
    """It has open handoffs (their SLA and "still waiting" notice are judged)."""
    cooldowns: bool
    """Open sessions of it are in a cool-down that has ended."""
    blocks: bool
    """Unlifted blocks of it have expired."""


@dataclass(frozen=True, slots=True)
class EndedCooldown:
    """An open session of the tenant whose cool-down has ended (``mode_until_ms``)."""

    session_id: SessionId
    until_ms: int
    held: bool
    """It holds messages (unconsumed): its driver ends the cool-down with the turn that
    answers them."""


@runtime_checkable
class RecoveryScanner(Protocol):
    async def sessions_with_work(
        self, limit: int = 1000, unheld_at_ms: int | None = None, now_ms: int | None = None
    ) -> list[SessionWork]:
        """Sessions with work, at most ``limit``. With ``unheld_at_ms``, only the work
        nobody holds at that time (in the store's clock): turn work whose session lease is
        not live, deliveries whose delivery lease is not live (continuous recovery).

        Unconsumed messages are work only where a driver acts on them (``acf.domain.
        modes``): in agent mode, in blocked mode (a DROP turn consumes them), and in a
        cool-down that has ended by ``now_ms`` (the store's clock; default
        ``unheld_at_ms``; neither: every cool-down). A session in human mode or in a
        running cool-down is listed only for a live turn (to be stood down), a requested
        replay or its deliveries."""
        ...

    async def idle_sessions(
        self,
        idle_since_before_ms: int,
        limit: int = 1000,
        after: tuple[int, TenantId, SessionId] | None = None,
    ) -> list[IdleSession]:
        """Candidates for the idle close, across tenants: OPEN sessions in agent mode (a
        session handed to a person, in a cool-down or blocked never closes for idleness)
        idle since at or before ``idle_since_before_ms`` with every message consumed, no
        live turn, no undelivered reply and no requested replay. Longest idle first (then
        tenant, session id); ``after``: the ``cursor`` of the last one a previous call
        listed. At most ``limit``. A candidate is only that: the close decides again under
        the lease."""
        ...

    async def mode_work(self, now_ms: int) -> list[ModeWork]:
        """The tenants with open handoffs, with open sessions whose cool-down ended by
        ``now_ms``, or with unlifted blocks expired by ``now_ms`` (the caller's time, which
        the watch's ops compare with), by tenant: one read a check, whatever the number of
        tenants. Each is only that: the watch reads and decides per tenant."""
        ...

    async def ended_cooldowns(
        self, tenant: TenantId, now_ms: int, limit: int = 500
    ) -> list[EndedCooldown]:
        """The tenant's open sessions in a cool-down that ended by ``now_ms``, the earliest
        ended first, at most ``limit`` (a tenant-scoped read: the mode watch's after
        ``mode_work`` named the tenant). Ending one (``EndCooldown``) or its driver's
        release takes it off the list."""
        ...
