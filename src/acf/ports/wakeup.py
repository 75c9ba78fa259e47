"""Wake-up signals: "this session has news", from ingress to whoever runs turns."""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId


@dataclass(frozen=True, slots=True)
class WakeUp:
    tenant: TenantId
    session_id: SessionId


@runtime_checkable
class WakeUps(Protocol):
    """Best-effort notification. The store stays the truth: a lost wake-up costs latency,
    never correctness, because recovery finds sessions with unconsumed messages.

    Guarantees: ``notify`` never blocks on a slow subscriber; each subscriber sees the
    wake-ups published after it subscribed (repeats for one session may be coalesced).
    """

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None: ...

    def subscribe(self) -> "Subscription":
        """Start receiving; registered before this returns."""
        ...


@runtime_checkable
class Subscription(Protocol):
    """An async iterator of wake-ups; ``close`` stops delivery to it."""

    def __aiter__(self) -> "Subscription": ...

    async def __anext__(self) -> WakeUp: ...

    def close(self) -> None: ...
