"""FabricEvents: the audit trail. Every event carries the full correlation (DESIGN §3.9)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from acf.domain.ids import GroupId, SessionId, TenantId, TraceId, TurnId


class EventKind(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_DUPLICATE = "message.duplicate"
    MESSAGE_TRUNCATED = "message.truncated"
    WEBHOOK_REFUSED = "webhook.refused"
    """A signed webhook addressed to an account or number the tenant does not own."""
    WEBHOOK_SKIPPED = "webhook.skipped"
    """Items of a signed webhook not taken (malformed, or of a kind acf does not take)."""
    TYPING_STARTED = "typing.started"
    TYPING_STOPPED = "typing.stopped"
    WINDOW_OPENED = "window.opened"
    WINDOW_EXTENDED = "window.extended"
    WINDOW_CLOSED = "window.closed"
    TURN_STARTED = "turn.started"
    TURN_HELD = "turn.held"
    """A ready reply waits, uncommitted, while the customer types (``typing_hold_ms``)."""
    TURN_HOLD_ENDED = "turn.hold_ended"
    TURN_PROGRESS = "turn.progress"
    TURN_ATTEMPT_FAILED = "turn.attempt_failed"
    TURN_IRREVERSIBLE_STARTED = "turn.irreversible_started"
    TURN_FORCE_COMPLETED = "turn.force_completed"
    TURN_SUPERSEDED = "turn.superseded"
    TURN_ABSORBED = "turn.absorbed"
    TURN_COMMITTED = "turn.committed"
    TURN_FAILED = "turn.failed"
    RESPONSE_QUEUED = "response.queued"
    RESPONSE_DELIVERED = "response.delivered"
    RESPONSE_STATUS = "response.status"
    RESPONSE_FAILED = "response.failed"
    RESPONSE_FALLBACK = "response.fallback"
    REPLY_CUT = "reply.cut"
    """Paced parts of a reply not sent: the customer wrote again before they went out."""
    REPLY_DRAFT_WITHDRAWN = "reply.draft_withdrawn"
    """The drafts a turn's attempt streamed will not become its reply (superseded, failed)."""
    SESSION_CONTINUED = "session.continued"
    TOOL_REFUSED = "tool.refused"
    TOOL_EXECUTION_STARTED = "tool.execution_started"
    TOOL_EXECUTION_COMPLETED = "tool.execution_completed"
    TOOL_EXECUTION_FAILED = "tool.execution_failed"
    TOOL_SIDE_EFFECT_COMPLETED = "tool.side_effect_completed"
    TOOL_IN_DOUBT = "tool.in_doubt"
    TOOL_COMPENSATED = "tool.compensated"
    CONFIRMATION_REQUESTED = "confirmation.requested"
    CONFIRMATION_RESOLVED = "confirmation.resolved"
    CONFIRMATION_EXPIRED = "confirmation.expired"
    LEASE_LOST = "lease.lost"
    SESSION_FLAGGED = "session.flagged"
    DEAD_LETTER_RECORDED = "dead_letter.recorded"
    """A turn's agent failed for good: what it was asked is kept for a person to replay."""
    DEAD_LETTER_REPLAY_REQUESTED = "dead_letter.replay_requested"
    DEAD_LETTER_REPLAYED = "dead_letter.replayed"
    """A REPLAY turn ran the dead letter again and ended (committed or failed)."""
    SESSION_CLOSED = "session.closed"
    """The session closed (idle past its channel's timeout); the next message opens a new one."""
    SESSION_REPINNED = "session.repinned"
    """A session moved to another configuration version at a turn's start (a rollback, a
    canary rolled back, or a version applied ``next_turn``), its state migrated if declared."""
    CONFIG_PUSHED = "config.pushed"
    CONFIG_PROMOTED = "config.promoted"
    CONFIG_ROLLED_BACK = "config.rolled_back"
    CONFIG_CANARY_STARTED = "config.canary_started"
    CONFIG_CANARY_ADVANCED = "config.canary_advanced"
    CONFIG_CANARY_ROLLED_BACK = "config.canary_rolled_back"
    CONFIG_GATE_RECORDED = "config.gate_recorded"
    """A scenario run or preview against a version was recorded (it gates ``promote``)."""
    SESSION_HANDED_OFF = "session.handed_off"
    """The session entered human mode {reason, source, by, handoff_id}: the agent stops."""
    SESSION_RESUMED = "session.resumed"
    """The agent answers again {handoff_id, by, note}."""
    HANDOFF_CLAIMED = "handoff.claimed"
    HANDOFF_RELEASED = "handoff.released"
    HANDOFF_SLA_BREACHED = "handoff.sla_breached"
    """Nobody claimed the waiting session within the tenant's SLA threshold."""
    HANDOFF_STILL_WAITING = "handoff.still_waiting"
    """The customer was sent the tenant's "still waiting" notice (once per handoff)."""
    OPERATOR_REPLIED = "operator.replied"
    OPERATOR_NOTE_ADDED = "operator.note_added"
    ABUSE_SUSPECTED = "abuse.suspected"
    """A firewall detector fired {detector, detail, channel, customer}."""
    ABUSE_COOLDOWN_STARTED = "abuse.cooldown_started"
    ABUSE_COOLDOWN_ENDED = "abuse.cooldown_ended"
    ABUSE_MESSAGES_DROPPED = "abuse.messages_dropped"
    """A blocked customer's messages were consumed without an answer {from_seq, to_seq}."""
    CUSTOMER_BLOCKED = "customer.blocked"
    CUSTOMER_UNBLOCKED = "customer.unblocked"
    RATE_EXCEEDED = "rate.exceeded"
    """A signed webhook's message over the tenant's rate: stored and acknowledged anyway."""


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

    def fields(self) -> dict[str, str]:
        """The ids that are set, for binding to a log line."""
        return {
            k: v
            for k, v in (
                ("tenant", self.tenant),
                ("trace_id", self.trace_id),
                ("session_id", self.session_id),
                ("turn_id", self.turn_id),
                ("group_id", self.group_id),
                ("agent_version", self.agent_version),
                ("config_version", self.config_version),
            )
            if v is not None
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
