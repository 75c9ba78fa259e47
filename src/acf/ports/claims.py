"""Claims: a lease taken and what it guards read, in one transaction of the store.

Whoever takes a lease reads next what the previous holder left; reading it in the
transaction that took the lease (after the lease row is written, so after the previous
holder's last commit) saves a round trip on the way of every turn and every reply.
"""

from dataclasses import dataclass
from typing import Protocol

from acf.domain.ids import SessionId, TenantId
from acf.domain.messages import InboundMessage
from acf.domain.turns import Turn
from acf.ports.lease import Lease
from acf.ports.outbox import OutboxRow
from acf.ports.session_store import SessionRecord


@dataclass(frozen=True, slots=True)
class SessionClaim:
    lease: Lease
    session: SessionRecord | None
    live: Turn | None
    """The session's accumulating or running turn."""


@dataclass(frozen=True, slots=True)
class DeliveryClaim:
    lease: Lease
    """The session's delivery lease (``delivery_lease_id``)."""
    rows: list[OutboxRow]
    """The session's undelivered rows, in delivery order."""
    session: SessionRecord | None
    newest: InboundMessage | None
    """The customer's newest message in the session."""


class Claims(Protocol):
    """Each method is ``SessionLease.acquire`` (same guarantees, same ``None`` when another
    holder's lease is live) followed by reads in the same transaction."""

    async def claim_session(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> SessionClaim | None:
        """The session lease, then the session and its live turn."""
        ...

    async def claim_delivery(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> DeliveryClaim | None:
        """The session's delivery lease, then its undelivered rows, the session and the
        customer's newest message."""
        ...
