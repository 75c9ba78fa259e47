"""Session lease with a fencing token: at most one holder per session at a time."""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


def delivery_lease_id(session_id: str) -> SessionId:
    """The id under which a session's outbox relay holds its own lease (the relay runs
    outside the session lease, DESIGN §4 step 5, but one relay per session at a time)."""
    return f"{session_id}/delivery"


@dataclass(frozen=True, slots=True)
class Lease:
    tenant: TenantId
    session_id: SessionId
    holder: str
    fence: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class CheckFence(WriteOp[None]):
    """Guard: raises ``Conflict("fence")`` unless ``fence`` is the session's current fence and
    its holder has not released the lease. Stage it first in every write a turn makes.

    Expiry alone does not refuse the write: a lease that expired and that nobody took over
    is still the holder's (a take-over grows the fence, and the check and a take-over are
    serialized by the store), so a busy process loses time, never its work. ``now_ms`` is
    when the writer staged the unit."""

    session_id: SessionId
    fence: int
    now_ms: int


@runtime_checkable
class SessionLease(Protocol):
    """Exclusive, expiring ownership of a session.

    Guarantees: ``acquire`` succeeds for at most one holder while a lease is unexpired; each
    successful acquire returns a fence strictly greater than every earlier one for the
    session, so a write guarded by ``CheckFence`` from an old holder always fails; expiry is
    judged with the store's clock. Expiry only allows a take-over: ``renew`` extends the
    lease as long as its fence is unchanged and it was not released, even after expiry, and
    refuses once another holder took it (or it was released).
    """

    async def acquire(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> Lease | None:
        """The new lease, or ``None`` when another holder's lease is still live."""
        ...

    async def renew(self, lease: Lease, ttl_ms: int) -> Lease | None:
        """The extended lease, or ``None`` when it was lost (taken over or released)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up early; does nothing if it is no longer held."""
        ...

    async def current(self, tenant: TenantId, session_id: SessionId) -> Lease | None:
        """The unexpired lease of the session, if any."""
        ...
