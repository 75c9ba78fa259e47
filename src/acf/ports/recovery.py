"""Recovery scanner: the one read that crosses tenants, for start-up and continuous recovery.

It lists where work was left (DESIGN §4) and nothing else: ids, never content. Everything
the recovery then does goes through the tenant-scoped ports. In distributed mode it runs
under the role allowed to see all tenants.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId


@dataclass(frozen=True, slots=True)
class SessionWork:
    tenant: TenantId
    session_id: SessionId
    turns: bool
    """Unconsumed messages, a live (ACCUMULATING or RUNNING) turn, or a requested replay
    of a dead letter."""
    deliveries: bool
    """Outbox rows not yet accepted by the provider."""


@runtime_checkable
class RecoveryScanner(Protocol):
    async def sessions_with_work(
        self, limit: int = 1000, unheld_at_ms: int | None = None
    ) -> list[SessionWork]:
        """Sessions with work, at most ``limit``. With ``unheld_at_ms``, only the work
        nobody holds at that time (in the store's clock): turn work whose session lease is
        not live, deliveries whose delivery lease is not live (continuous recovery)."""
        ...
