"""Signals: facts about a conversation that are not messages (typing, delivery statuses)."""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.session_key import SessionKey


@dataclass(frozen=True, slots=True)
class TypingSignal:
    """The customer started (``active``) or stopped typing."""

    key: SessionKey
    active: bool
    at_ms: int


class DeliveryStatus(StrEnum):
    """Outbound delivery statuses, applied monotonically: a lower rank never overwrites."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    CUT = "cut"
    """Never sent: a later part of a paced reply that had not gone out when the customer
    wrote again (``reply.cut``). Only a pending row is cut; nothing follows it."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        """Failed and cut rows change no more."""
        return self in _TERMINAL

    def may_follow(self, current: "DeliveryStatus") -> bool:
        """Whether this status may replace ``current`` (failed and cut are terminal; a
        row is cut only while pending)."""
        if current.is_terminal:
            return False
        if self is DeliveryStatus.CUT:
            return current is DeliveryStatus.PENDING
        return self.rank > current.rank


_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.CUT: 4,
}
_TERMINAL = frozenset({DeliveryStatus.FAILED, DeliveryStatus.CUT})


@dataclass(frozen=True, slots=True)
class DeliveryStatusSignal:
    """A provider reported a status for a message acf sent."""

    tenant: str
    provider_message_id: str
    status: DeliveryStatus
    at_ms: int
    error: str | None = None
