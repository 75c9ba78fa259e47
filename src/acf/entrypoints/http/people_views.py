"""What the people-in-the-loop routes take and return: the inbox, handoffs, notes, operator
replies, the block list, the holds and the abuse summary (``routes_handoff``,
``routes_blocks``), and how the stored records become them."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from acf.domain.abuse import Detector
from acf.domain.channels import Channel
from acf.domain.session_key import MAX_PART_LENGTH
from acf.ports.firewall import Block
from acf.ports.handoffs import Handoff, InboxEntry, Note
from acf.ports.session_store import SessionRecord
from acf.service.handoff_units import MAX_BUTTONS
from acf.service.handoff_units import MAX_TEXT as MAX_REPLY_LENGTH

MAX_NOTE_LENGTH = 4000
MAX_REASON_LENGTH = 500
MAX_BUTTON_TITLE = 64
MAX_CLAIM_TTL_S = 86_400
MAX_BLOCK_S = 366 * 86_400

_NOT_BLANK = r"\S"


def _storable(value: str) -> str:
    # JSON can carry a NUL (\u0000), which PostgreSQL cannot store in text: refused here,
    # as the channels' payloads refuse it, so the answer is a 422 naming the field.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


_Storable = AfterValidator(_storable)


def _text(max_length: int, pattern: str | None = _NOT_BLANK) -> StringConstraints:
    return StringConstraints(min_length=1, max_length=max_length, pattern=pattern)


# Every string a request carries is _Storable (tests/http/test_people_nul.py walks them).
Reason = Annotated[str, _text(MAX_REASON_LENGTH), _Storable]
NoteText = Annotated[str, _text(MAX_NOTE_LENGTH), _Storable]
ButtonTitle = Annotated[str, _text(MAX_BUTTON_TITLE), _Storable]
ReplyText = Annotated[str, _text(MAX_REPLY_LENGTH), _Storable]
"""An operator's reply: at most what the desk sends (``handoff_units.MAX_TEXT``)."""
Customer = Annotated[str, _text(MAX_PART_LENGTH, pattern=None), _Storable]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------


class HandoffBody(_Body):
    reason: Reason = Field(description="Why a person takes the session (shown in the inbox).")


class ClaimBody(_Body):
    ttl_s: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CLAIM_TTL_S,
        description="How long the claim holds without a reply (default: the tenant's "
        "`handoff.claim_ttl_s`); claiming again, or replying, renews it.",
    )


class OperatorMessageBody(_Body):
    text: ReplyText = Field(
        description="What the customer receives, through the session's channel "
        f"(1 to {MAX_REPLY_LENGTH} characters, not blank).",
    )
    buttons: list[ButtonTitle] | None = Field(
        default=None,
        max_length=MAX_BUTTONS,
        description="Reply buttons (numbered options where the channel has none).",
    )
    answers_through_seq: int | None = Field(
        default=None,
        ge=0,
        le=2**53,
        description="The last customer message this reply answers (default: every message "
        "stored so far); the agent, once resumed, answers only the later ones.",
    )


class NoteBody(_Body):
    text: NoteText = Field(description="An internal note: never sent to the customer.")


class HandBackBody(_Body):
    note: NoteText | None = Field(
        default=None,
        description="For the other operators (release), or for the agent, which sees it in "
        "its next turn (resume).",
    )


class BlockBody(_Body):
    channel: Channel
    customer: Customer = Field(
        description="The customer's address on the channel, as the session names it.",
    )
    reason: Reason
    expires_in_s: int | None = Field(
        default=None, ge=1, le=MAX_BLOCK_S, description="Lifted by itself after this long."
    )


# -- responses --------------------------------------------------------------------------


class OperatorView(BaseModel):
    key_id: str
    name: str


class HandoffView(BaseModel):
    handoff_id: str
    session_id: str
    reason: str
    source: str = Field(description="pipeline, operator or rule.")
    opened_by: str | None = Field(description="The operator key that handed it off, if one.")
    opened_at_ms: int
    claimed_by: OperatorView | None = Field(description="The live claim's holder, if any.")
    claimed_at_ms: int | None
    claim_expires_at_ms: int | None
    last_operator_reply_at_ms: int | None
    sla_breached_at_ms: int | None
    still_waiting_at_ms: int | None
    resolved_at_ms: int | None
    resolved_by: str | None
    resume_note: str | None


class InboxEntryView(BaseModel):
    handoff_id: str
    session_id: str
    agent: str
    customer: str
    channel: str
    mode: str
    reason: str
    source: str
    opened_at_ms: int
    waiting_since_ms: int = Field(
        description="When the handoff opened, or the last operator reply when later."
    )
    waiting_ms: int = Field(description="How long the customer has been waiting (to now).")
    unanswered: int = Field(description="Customer messages no reply has answered yet.")
    claimed_by: OperatorView | None
    claim_expires_at_ms: int | None
    sla_breached_at_ms: int | None
    still_waiting_at_ms: int | None
    preview: str | None = Field(description="The newest message's text (200 characters).")
    resolved_at_ms: int | None


class InboxView(BaseModel):
    entries: list[InboxEntryView]
    sla_ms: int = Field(description="The tenant's SLA: a wait past it is marked breached.")


class SessionModeView(BaseModel):
    session_id: str
    mode: str
    mode_reason: str | None
    mode_since_ms: int | None
    handoff: HandoffView | None = Field(description="The open handoff, if any.")


class OperatorReplyView(BaseModel):
    turn_id: str = Field(description="The HUMAN turn that carries the reply.")
    outbox_ids: list[int] = Field(description="Its outbox rows (their delivery statuses).")
    answered_through_seq: int | None = Field(
        description="The last customer message the reply answers."
    )


class NoteView(BaseModel):
    note_id: str
    session_id: str
    handoff_id: str | None
    author: OperatorView
    text: str
    created_at_ms: int


class NoteList(BaseModel):
    notes: list[NoteView]


class BlockView(BaseModel):
    block_id: str
    channel: str
    customer: str
    reason: str
    created_by: str = Field(description="The operator key id, or `firewall` (automatic).")
    created_at_ms: int
    expires_at_ms: int | None
    lifted_at_ms: int | None
    lifted_by: str | None = Field(description="A key id, or `expiry`.")
    active: bool


class BlockList(BaseModel):
    blocks: list[BlockView]


class HoldView(BaseModel):
    session_id: str
    agent: str
    customer: str
    channel: str
    mode: str = Field(description="cooldown, blocked or human.")
    mode_reason: str | None
    mode_since_ms: int | None
    mode_until_ms: int | None = Field(description="When a cool-down ends.")
    held_messages: int = Field(description="Stored messages not answered yet.")


class HoldList(BaseModel):
    sessions: list[HoldView]


class AbuseSummary(BaseModel):
    since_ms: int
    suspected: dict[str, int] = Field(description="`abuse.suspected` events per detector.")
    cooldowns_started: int
    blocks_active: int
    held_messages: int = Field(description="Messages held now in sessions in cool-down or blocked.")
    dropped_messages: int = Field(description="Messages of blocked customers dropped.")
    rate_exceeded: int = Field(
        description="Webhook messages taken over the tenant's rate (stored, never refused)."
    )
    truncated: bool = Field(
        description="True when more events matched than were counted: narrow `since_ms`."
    )


# -- records to views -------------------------------------------------------------------


def _operator(key_id: str | None, name: str | None) -> OperatorView | None:
    return None if key_id is None else OperatorView(key_id=key_id, name=name or key_id)


def handoff_view(h: Handoff, now_ms: int) -> HandoffView:
    holder = h.claimed_at(now_ms)
    return HandoffView(
        handoff_id=h.handoff_id,
        session_id=h.session_id,
        reason=h.reason,
        source=h.source.value,
        opened_by=h.opened_by,
        opened_at_ms=h.opened_at_ms,
        claimed_by=_operator(holder, h.claimed_by_name),
        claimed_at_ms=h.claimed_at_ms if holder else None,
        claim_expires_at_ms=h.claim_expires_at_ms if holder else None,
        last_operator_reply_at_ms=h.last_operator_reply_at_ms,
        sla_breached_at_ms=h.sla_breached_at_ms,
        still_waiting_at_ms=h.still_waiting_at_ms,
        resolved_at_ms=h.resolved_at_ms,
        resolved_by=h.resolved_by,
        resume_note=h.resume_note,
    )


def inbox_entry_view(e: InboxEntry, now_ms: int) -> InboxEntryView:
    h = e.handoff
    holder = h.claimed_at(now_ms)
    until = h.resolved_at_ms if h.resolved_at_ms is not None else now_ms
    return InboxEntryView(
        handoff_id=h.handoff_id,
        session_id=h.session_id,
        agent=e.agent,
        customer=e.customer,
        channel=e.channel.value,
        mode=e.mode.value,
        reason=h.reason,
        source=h.source.value,
        opened_at_ms=h.opened_at_ms,
        waiting_since_ms=e.waiting_since_ms,
        waiting_ms=max(0, until - e.waiting_since_ms),
        unanswered=e.unanswered,
        claimed_by=_operator(holder, h.claimed_by_name),
        claim_expires_at_ms=h.claim_expires_at_ms if holder else None,
        sla_breached_at_ms=h.sla_breached_at_ms,
        still_waiting_at_ms=h.still_waiting_at_ms,
        preview=e.preview,
        resolved_at_ms=h.resolved_at_ms,
    )


def mode_view(s: SessionRecord, handoff: Handoff | None, now_ms: int) -> SessionModeView:
    return SessionModeView(
        session_id=s.session_id,
        mode=s.mode.value,
        mode_reason=s.mode_reason,
        mode_since_ms=s.mode_since_ms,
        handoff=None if handoff is None else handoff_view(handoff, now_ms),
    )


def note_view(n: Note) -> NoteView:
    return NoteView(
        note_id=n.note_id,
        session_id=n.session_id,
        handoff_id=n.handoff_id,
        author=OperatorView(key_id=n.author_key_id, name=n.author_name),
        text=n.text,
        created_at_ms=n.created_at_ms,
    )


def block_view(b: Block, now_ms: int) -> BlockView:
    return BlockView(
        block_id=b.block_id,
        channel=b.channel.value,
        customer=b.customer,
        reason=b.reason,
        created_by=b.created_by,
        created_at_ms=b.created_at_ms,
        expires_at_ms=b.expires_at_ms,
        lifted_at_ms=b.lifted_at_ms,
        lifted_by=b.lifted_by,
        active=b.active_at(now_ms),
    )


def hold_view(s: SessionRecord) -> HoldView:
    return HoldView(
        session_id=s.session_id,
        agent=s.key.agent,
        customer=s.key.customer,
        channel=s.key.channel.value,
        mode=s.mode.value,
        mode_reason=s.mode_reason,
        mode_since_ms=s.mode_since_ms,
        mode_until_ms=s.mode_until_ms,
        held_messages=s.last_seq - s.consumed_seq,
    )


def no_findings() -> dict[str, int]:
    """Every detector at 0, so a summary always names them all."""
    return {d.value: 0 for d in Detector}
