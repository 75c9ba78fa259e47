"""What the API returns: response models, and how stored records become them."""

from typing import Any

from pydantic import BaseModel, Field

from acf.adapters.channels.web import client_message_id_of
from acf.domain.events import FabricEvent
from acf.domain.messages import InboundMessage
from acf.domain.records import TurnRecord
from acf.domain.turns import Turn
from acf.ports.ledger import LedgerEntry
from acf.ports.outbox import OutboxRow
from acf.ports.session_store import SessionRecord


class Problem(BaseModel):
    field: str = Field(description="Dotted path of the field, empty for the whole body.")
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="A short machine-readable code.")
    message: str
    problems: list[Problem] = Field(default_factory=list)


class MessageAccepted(BaseModel):
    message_id: str
    session_id: str
    seq: int
    duplicate: bool = Field(description="True when the message was already stored.")
    trace_id: str


class WebhookAccepted(BaseModel):
    accepted: int = Field(description="Messages stored by this request.")
    duplicates: int = Field(description="Messages already stored (a provider's retry).")
    statuses_applied: int = Field(
        description="Delivery statuses that moved a reply forward (sent → delivered → read, "
        "or failed)."
    )
    statuses_ignored: int = Field(
        description="Delivery statuses repeated, older than the reply's, or for a message "
        "acf has not recorded: such a status may have come before acf's record of the send, "
        "so it is looked up again in the background for about a minute and applied then."
    )
    skipped: list[str] = Field(description="Messages of kinds acf does not take, and why.")


class TypingAccepted(BaseModel):
    session_id: str | None = Field(description="None when the customer has no session yet.")


class SessionView(BaseModel):
    session_id: str
    agent: str
    customer: str
    channel: str
    status: str
    last_seq: int
    consumed_seq: int
    state_version: int
    flagged: bool
    flag_reason: str | None
    created_at_ms: int
    updated_at_ms: int


class MessageView(BaseModel):
    message_id: str
    seq: int
    text: str | None
    button_id: str | None
    provider_message_id: str
    client_message_id: str | None = Field(description="The web chat's own id (web only).")
    received_at_ms: int
    channel: str = Field(
        description="Where the customer wrote this one (a session's "
        "messages may come from several channels once a conversation moved)."
    )
    address: str = Field(description="The customer's address on that channel.")


class ReplyView(BaseModel):
    outbox_id: int
    turn_id: str
    position: int
    text: str
    buttons: list[dict[str, Any]]
    status: str = Field(
        description="pending, sent, delivered, read, failed, or cut (a later part not sent: "
        "the customer wrote again first)"
    )
    attempts: int
    created_at_ms: int
    channel: str | None = Field(
        description="Where the reply went (set at its first send attempt, or when queued "
        "for an address); None before its first attempt."
    )
    address: str | None
    fallback_of: int | None = Field(
        description="The failed reply this one is the fallback copy of."
    )


class SessionDetail(SessionView):
    state: dict[str, Any]
    messages: list[MessageView]
    replies: list[ReplyView]


class TurnView(BaseModel):
    turn_id: str
    group_id: str
    phase: str
    from_seq: int
    to_seq: int
    attempt: int
    trace_id: str
    created_at_ms: int
    updated_at_ms: int
    record: dict[str, Any] | None = Field(description="The TurnRecord, once the turn ended.")


class EventView(BaseModel):
    event_id: int
    kind: str
    at_ms: int
    session_id: str | None
    turn_id: str | None
    trace_id: str
    correlation: dict[str, str]
    data: dict[str, Any]


class LedgerView(BaseModel):
    execution_id: str
    idempotency_key: str
    tool: str
    policy: str
    status: str
    session_id: str
    group_id: str
    turn_id: str
    customer: str
    args: dict[str, Any]
    result: Any
    error: str | None
    started_at_ms: int
    finished_at_ms: int | None
    expires_at_ms: int | None


class SessionList(BaseModel):
    items: list[SessionView]


class TurnList(BaseModel):
    items: list[TurnView]


class EventList(BaseModel):
    items: list[EventView]


class LedgerList(BaseModel):
    items: list[LedgerView]


def session_view(s: SessionRecord) -> SessionView:
    return SessionView(
        session_id=s.session_id,
        agent=s.key.agent,
        customer=s.key.customer,
        channel=s.key.channel.value,
        status=s.status.value,
        last_seq=s.last_seq,
        consumed_seq=s.consumed_seq,
        state_version=s.state_version,
        flagged=s.flagged,
        flag_reason=s.flag_reason,
        created_at_ms=s.created_at_ms,
        updated_at_ms=s.updated_at_ms,
    )


def message_view(m: InboundMessage) -> MessageView:
    return MessageView(
        message_id=m.message_id,
        seq=m.seq,
        text=m.text,
        button_id=None if m.button is None else m.button.button_id,
        provider_message_id=m.provider_message_id,
        client_message_id=client_message_id_of(m.provider_message_id),
        received_at_ms=m.received_at_ms,
        channel=m.key.channel.value,
        address=m.key.customer,
    )


def reply_view(r: OutboxRow) -> ReplyView:
    return ReplyView(
        outbox_id=r.outbox_id,
        turn_id=r.turn_id,
        position=r.position,
        text=str(r.payload.get("text", "")),
        buttons=list(r.payload.get("buttons", [])),
        status=r.status.value,
        attempts=r.attempts,
        created_at_ms=r.created_at_ms,
        channel=None if r.route is None else r.route.channel.value,
        address=None if r.route is None else r.route.address,
        fallback_of=r.fallback_of,
    )


def record_dict(r: TurnRecord) -> dict[str, Any]:
    return {
        "outcome": r.outcome.value,
        "from_seq": r.from_seq,
        "to_seq": r.to_seq,
        "attempt": r.attempt,
        "started_at_ms": r.started_at_ms,
        "ended_at_ms": r.ended_at_ms,
        "replies": list(r.replies),
        "state_version_before": r.state_version_before,
        "state_version_after": r.state_version_after,
        "error": r.error,
        "timings_ms": dict(r.timings_ms),
        "details": dict(r.details),
        "correlation": r.correlation.fields(),
    }


def turn_view(t: Turn, record: TurnRecord | None) -> TurnView:
    return TurnView(
        turn_id=t.turn_id,
        group_id=t.group_id,
        phase=t.phase.value,
        from_seq=t.from_seq,
        to_seq=t.to_seq,
        attempt=t.attempt,
        trace_id=t.trace_id,
        created_at_ms=t.created_at_ms,
        updated_at_ms=t.updated_at_ms,
        record=None if record is None else record_dict(record),
    )


def event_view(e: FabricEvent) -> EventView:
    assert e.event_id is not None, "stored events have ids"
    return EventView(
        event_id=e.event_id,
        kind=e.kind.value,
        at_ms=e.at_ms,
        session_id=e.correlation.session_id,
        turn_id=e.correlation.turn_id,
        trace_id=e.correlation.trace_id,
        correlation=e.correlation.fields(),
        data=dict(e.data),
    )


def ledger_view(e: LedgerEntry) -> LedgerView:
    return LedgerView(
        execution_id=e.execution_id,
        idempotency_key=e.idempotency_key,
        tool=e.tool,
        policy=e.policy.value,
        status=e.status.value,
        session_id=e.session_id,
        group_id=e.group_id,
        turn_id=e.turn_id,
        customer=e.customer,
        args=dict(e.args),
        result=e.result,
        error=e.error,
        started_at_ms=e.started_at_ms,
        finished_at_ms=e.finished_at_ms,
        expires_at_ms=e.expires_at_ms,
    )
