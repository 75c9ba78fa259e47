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

    @property
    def rank(self) -> int:
        return _RANK[self]

    def may_follow(self, current: "DeliveryStatus") -> bool:
        """Whether this status may replace ``current`` (failed is terminal)."""
        if current is DeliveryStatus.FAILED:
            return False
        return self.rank > current.rank


_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
}


@dataclass(frozen=True, slots=True)
class DeliveryStatusSignal:
    """A provider reported a status for a message acf sent."""

    tenant: str
    provider_message_id: str
    status: DeliveryStatus
    at_ms: int
    error: str | None = None
