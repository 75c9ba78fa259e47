"""Outbox: committed replies waiting for delivery, sent in order per session.

Rows come from three writers: a turn's commit (its reply segments), a definite failure
(``EnqueueFallback``: one copy of the failed row on the next channel of the fallback
ladder, DESIGN §9) and an operator continuing a session on another channel (a notice,
``EnqueueReply`` with a ``route``). A row ends sent (then delivered, read), failed, or
cut: a later part of a paced reply that had not gone out when the customer wrote again
(``CutUnsentPart``, the one exception to DESIGN §3 invariant 6).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.events import Correlation
from acf.domain.fallback import Route
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
    route: Route | None = None
    """Where the row goes: set when it is queued for a given address (a fallback, a
    notice), else by its first send attempt (so a retry goes where the first try went)."""
    fallback_of: int | None = None
    """The failed row this one is the fallback copy of."""
    parts_sent: int = 0
    """Provider messages of the row already accepted (a reply cut in parts whose later
    part failed): a retry resumes after them."""
    trace_id: str | None = None
    """Its turn's trace id, read with the row: the provider call carries that trace."""


@dataclass(frozen=True, slots=True)
class EnqueueReply(WriteOp[int]):
    """Queue one reply segment of a turn; returns its outbox id. ``position`` orders
    the segments of a turn; the turn's commit order orders turns. With ``route`` the row
    goes to that address (an operator's notice), else where the customer last wrote."""

    session_id: SessionId
    turn_id: TurnId
    position: int
    payload: Mapping[str, Any]
    at_ms: int
    route: Route | None = None


@dataclass(frozen=True, slots=True)
class EnqueueFallback(WriteOp[int]):
    """Queue the one fallback copy of a failed row, addressed to ``route``; returns its
    outbox id.

    The copy takes the failed row's place in the session's order, records ``tried`` (the
    channels this reply went to before, oldest first) in its payload, routes ``route``'s
    address to the session (``RouteToSession``: the customer's answer there joins it) and
    records ``response.fallback`` with ``correlation``, all in the unit. A row falls back
    at most once, by a unique key: a second copy of the same row is a ``Conflict``.
    """

    failed_outbox_id: int
    route: Route
    tried: tuple[str, ...]
    reason: str
    correlation: Correlation
    at_ms: int


@dataclass(frozen=True, slots=True)
class RecordAttempt(WriteOp[int]):
    """Count a send attempt (with its outcome, or alone after a failure); returns the
    attempt number."""

    outbox_id: int
    at_ms: int
    route: Route | None = None
    """Where this attempt went; kept only if the row had no route yet."""


@dataclass(frozen=True, slots=True)
class RecordPartsSent(WriteOp[None]):
    """``parts`` more provider messages of the row were accepted (only grows)."""

    outbox_id: int
    parts: int
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


@dataclass(frozen=True, slots=True)
class CutUnsentPart(WriteOp[None]):
    """Cut one part of a paced reply that never went out: the row becomes ``cut``
    (terminal, never sent, not in the history the pipeline sees).

    The one exception to DESIGN §3 invariant 6, so it is narrow, and every condition is
    checked in this write: the row is pending and was never attempted (``attempts`` and
    ``parts_sent`` are 0: the relay has not claimed it), it is not its reply's first part
    (``position > 0``), and the session holds a message newer than its turn's range
    (``last_seq > to_seq``: a reply to the newest message is never cut). Otherwise
    ``Conflict``, and nothing of the unit is committed (its ``reply.cut`` event).
    """

    outbox_id: int
    at_ms: int


@runtime_checkable
class Outbox(Protocol):
    """Reads of the outbox.

    Guarantees: rows are created only by a turn's commit, by ``EnqueueFallback`` after a
    definite failure (at most one copy per row) and by an operator's notice;
    ``undelivered`` returns a session's PENDING rows in (commit, position) order, a
    fallback copy in its original's place, so a relay that sends the first and records it
    before the next keeps per-session order.
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
