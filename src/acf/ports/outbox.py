"""Outbox: committed replies waiting for delivery, sent in order per session."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId, TurnId
from acf.domain.signals import DeliveryStatus
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class OutboxRow:
    outbox_id: int
    session_id: SessionId
    turn_id: TurnId
    position: int
    payload: Mapping[str, Any]
    status: DeliveryStatus
    attempts: int
    provider_message_id: str | None
    error: str | None
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class EnqueueReply(WriteOp[int]):
    """Queue one reply segment of a turn; returns its outbox id. ``position`` orders
    the segments of a turn; the turn's commit order orders turns."""

    session_id: SessionId
    turn_id: TurnId
    position: int
    payload: Mapping[str, Any]
    at_ms: int


@dataclass(frozen=True, slots=True)
class RecordAttempt(WriteOp[int]):
    """Count a send attempt (with its outcome, or alone after a failure); returns the
    attempt number."""

    outbox_id: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class ApplyDeliveryStatus(WriteOp[bool]):
    """Apply a status monotonically (sent < delivered < read; failed is terminal).

    Returns whether the row changed; a stale or repeated status changes nothing. With
    ``guard`` a stale status is a ``Conflict`` instead, so nothing of its unit is committed
    (the event that would announce the change).
    """

    outbox_id: int
    status: DeliveryStatus
    at_ms: int
    provider_message_id: str | None = None
    error: str | None = None
    guard: bool = False


@runtime_checkable
class Outbox(Protocol):
    """Reads of the outbox.

    Guarantees: rows are created only by a turn's commit; ``undelivered`` returns a
    session's PENDING rows in (commit, position) order, so a relay that sends the first and
    records it before the next keeps per-session order.
    """

    async def get(self, tenant: TenantId, outbox_id: int) -> OutboxRow | None: ...

    async def undelivered(self, tenant: TenantId, session_id: SessionId) -> list[OutboxRow]: ...

    async def find_by_provider_id(
        self, tenant: TenantId, provider_message_id: str
    ) -> OutboxRow | None: ...

    async def for_session(
        self, tenant: TenantId, session_id: SessionId, last: int | None = None
    ) -> list[OutboxRow]:
        """The session's rows in order (the outbound half of the history): every one, or
        only the ``last`` ones."""
        ...
