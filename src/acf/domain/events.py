"""FabricEvents: the audit trail. Every event carries the full correlation (DESIGN §3.9)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from acf.domain.ids import GroupId, SessionId, TenantId, TraceId, TurnId


class EventKind(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_DUPLICATE = "message.duplicate"
    TYPING_STARTED = "typing.started"
    TYPING_STOPPED = "typing.stopped"
    WINDOW_OPENED = "window.opened"
    WINDOW_EXTENDED = "window.extended"
    WINDOW_CLOSED = "window.closed"
    TURN_STARTED = "turn.started"
    TURN_SUPERSEDED = "turn.superseded"
    TURN_ABSORBED = "turn.absorbed"
    TURN_COMMITTED = "turn.committed"
    TURN_FAILED = "turn.failed"
    RESPONSE_QUEUED = "response.queued"
    RESPONSE_DELIVERED = "response.delivered"
    RESPONSE_STATUS = "response.status"
    LEASE_LOST = "lease.lost"
    SESSION_FLAGGED = "session.flagged"


@dataclass(frozen=True, slots=True)
class Correlation:
    """The ids every event, record and log line of a turn carries."""

    tenant: TenantId
    trace_id: TraceId
    session_id: SessionId | None = None
    turn_id: TurnId | None = None
    group_id: GroupId | None = None
    agent_version: str | None = None
    config_version: str | None = None

    def as_log_context(self) -> dict[str, str]:
        return {k: v for k, v in _fields(self).items() if v is not None}


def _fields(c: Correlation) -> dict[str, str | None]:
    return {
        "tenant": c.tenant,
        "trace_id": c.trace_id,
        "session_id": c.session_id,
        "turn_id": c.turn_id,
        "group_id": c.group_id,
        "agent_version": c.agent_version,
        "config_version": c.config_version,
    }


@dataclass(frozen=True, slots=True)
class FabricEvent:
    """One audit event. ``event_id`` is assigned by the event store: increasing per store."""

    kind: EventKind
    at_ms: int
    correlation: Correlation
    data: Mapping[str, Any] = field(default_factory=dict)
    event_id: int | None = None

    @property
    def tenant(self) -> TenantId:
        return self.correlation.tenant
