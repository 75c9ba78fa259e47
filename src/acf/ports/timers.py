"""Timers: persisted deadlines (window close, retries, confirmation expiry, follow-ups)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class Timer:
    tenant: TenantId
    session_id: SessionId
    kind: str
    due_at_ms: int
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetTimer(WriteOp[None]):
    """Create or move the session's timer of this kind (one per session and kind)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class CancelTimer(WriteOp[bool]):
    """Remove the session's timer of this kind; returns whether one existed."""

    session_id: SessionId
    kind: str


@runtime_checkable
class Timers(Protocol):
    """Reads of deadlines.

    Guarantees: a deadline survives restarts until cancelled; ``due`` returns every timer of
    the tenant whose ``due_at_ms <= now_ms``, earliest first. Firing is at-least-once: the
    consumer cancels the timer in the same unit of work as the effect it triggers.
    """

    async def due(self, tenant: TenantId, now_ms: int, limit: int = 100) -> list[Timer]: ...

    async def get(self, tenant: TenantId, session_id: SessionId, kind: str) -> Timer | None: ...
