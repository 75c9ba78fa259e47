"""Human handoff: a session in human mode, the operator who holds it, their notes.

Writes are ops committed through the unit of work; each writes its own audit event (with
``by``: the operator's key id and name) in the same transaction. Every read and write is
scoped to one tenant. ``Conflict`` reasons are the API's 409 codes: ``"not_human"``,
``"claimed"``, ``"not_claimed"``, ``"closed"``, ``"blocked"``.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.ids import SessionId, TenantId, TurnId
from acf.domain.modes import SessionMode
from acf.ports.unit_of_work import WriteOp


class HandoffSource(StrEnum):
    PIPELINE = "pipeline"
    """The agent's result asked for a person (rules, LLM, agent service)."""
    OPERATOR = "operator"
    """An operator took the session (``POST /v1/sessions/{id}/handoff``)."""
    RULE = "rule"
    """The tenant's rule (``handoff.after_fallbacks`` fallback answers in the session)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: an API key of scope ``operator`` or ``admin``."""

    key_id: str
    name: str

    def as_payload(self) -> dict[str, str]:
        return {"key_id": self.key_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Handoff:
    tenant: TenantId
    handoff_id: str
    session_id: SessionId
    reason: str
    source: HandoffSource
    opened_by: str | None
    """The operator's key id (source ``operator``), else None."""
    opened_at_ms: int
    claimed_by: str | None = None
    claimed_by_name: str | None = None
    claimed_at_ms: int | None = None
    claim_expires_at_ms: int | None = None
    last_operator_reply_at_ms: int | None = None
    sla_breached_at_ms: int | None = None
    still_waiting_at_ms: int | None = None
    resolved_at_ms: int | None = None
    resolved_by: str | None = None
    resume_note: str | None = None

    def claimed_at(self, now_ms: int) -> str | None:
        """The key id holding a live claim at ``now_ms``, if any."""
        if self.claimed_by is None or self.claim_expires_at_ms is None:
            return None
        return self.claimed_by if self.claim_expires_at_ms > now_ms else None


class InboxState(StrEnum):
    WAITING = "waiting"
    """Open handoffs nobody holds a live claim on."""
    CLAIMED = "claimed"
    OPEN = "open"
    """Both of the above (the default)."""
    RESOLVED = "resolved"
    """Handed back to the agent, newest first."""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    handoff: Handoff
    agent: str
    customer: str
    channel: Channel
    mode: SessionMode
    last_seq: int
    consumed_seq: int
    waiting_since_ms: int
    """The handoff's open time, or the last operator reply's when later."""
    preview: str | None
    """The newest message's text (first 200 characters)."""

    @property
    def unanswered(self) -> int:
        return self.last_seq - self.consumed_seq


@dataclass(frozen=True, slots=True)
class Note:
    note_id: str
    session_id: SessionId
    handoff_id: str | None
    author_key_id: str
    author_name: str
    text: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class EnterHuman(WriteOp[Handoff | None]):
    """Put the session in human mode: ``agent``/``cooldown`` → ``human``, a ``handoffs`` row
    opened, ``notice`` queued once (an outbox row under an ``operator-`` turn id, payload
    author ``system``), ``session.handed_off`` written. Returns the new handoff; None when
    the session was already in human mode (a no-op: no second notice). ``Conflict("closed")``
    for a closed session, ``Conflict("blocked")`` for a blocked one."""

    tenant: TenantId
    session_id: SessionId
    reason: str
    source: HandoffSource
    at_ms: int
    trace_id: str
    by: Operator | None = None
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeAgent(WriteOp[None]):
    """Hand the session back: ``human`` (or ``cooldown``) → ``agent``, the open handoff
    resolved, ``note`` kept on it and in the session state's ``meta.handover`` {note, by,
    at_ms} (the agent sees it in its next turn; that turn's commit clears it), the
    session's fallback count reset to 0 (the handoff rule counts afresh). Writes
    ``session.resumed``. ``Conflict("not_human")`` when the session is in another mode,
    ``Conflict("claimed")`` when another operator holds a live claim."""

    tenant: TenantId
    session_id: SessionId
    by: Operator
    note: str | None
    at_ms: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class ClaimHandoff(WriteOp[Handoff]):
    """Take (or renew) the claim on the session's open handoff until ``at_ms + ttl_ms``, in
    one conditional update: unclaimed, claimed by ``by``, or its claim expired; else
    ``Conflict("claimed")``. ``Conflict("not_human")`` when no handoff is open. Writes
    ``handoff.claimed``."""

    tenant: TenantId
    session_id: SessionId
    by: Operator
    ttl_ms: int
    at_ms: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class CheckClaim(WriteOp[str]):
    """Guard: ``by`` holds a live claim on the session's open handoff; returns its id. Else
    ``Conflict("not_claimed")`` (``"not_human"`` when no handoff is open)."""

    tenant: TenantId
    session_id: SessionId
    by: Operator
    at_ms: int


@dataclass(frozen=True, slots=True)
class ReleaseClaim(WriteOp[None]):
    """Give up ``by``'s claim (the session stays in human mode, back in the waiting list);
    ``note`` becomes an internal note. ``Conflict("not_claimed")``. Writes
    ``handoff.released``."""

    tenant: TenantId
    session_id: SessionId
    by: Operator
    note: str | None
    at_ms: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class AddNote(WriteOp[Note]):
    """An internal note on the session (never sent to the customer); attached to the open
    handoff if any. Writes ``operator.note_added`` (without the text)."""

    tenant: TenantId
    session_id: SessionId
    note_id: str
    by: Operator
    text: str
    at_ms: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class MarkOperatorReply(WriteOp[None]):
    """The open handoff's ``last_operator_reply_at_ms`` (the inbox's waiting time restarts);
    extends its claim (the replying operator's, checked by ``CheckClaim`` in the same unit)
    to at least ``claim_until_ms``. ``Conflict("not_human")`` when the handoff is resolved.

    With ``turn_id`` (the operator's HUMAN turn, committed in the same unit, after its
    outbox rows) it writes ``operator.replied`` {handoff_id, by, turn_id, outbox_ids} with
    the trace ``trace_id``: the rows' ids exist only once they are inserted."""

    tenant: TenantId
    handoff_id: str
    at_ms: int
    claim_until_ms: int | None = None
    turn_id: TurnId | None = None
    by: Operator | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class MarkSlaBreached(WriteOp[bool]):
    """Set ``sla_breached_at_ms`` if unset, the handoff unresolved and its session in human
    mode; writes ``handoff.sla_breached``. False when another process did it first or the
    session is not in human mode (blocked, say): nothing written."""

    tenant: TenantId
    handoff_id: str
    at_ms: int
    waited_ms: int


@dataclass(frozen=True, slots=True)
class MarkStillWaiting(WriteOp[bool]):
    """Set ``still_waiting_at_ms`` if unset, the handoff unresolved and unclaimed and its
    session in human mode, and queue ``notice`` to the customer (once across processes);
    writes ``handoff.still_waiting``. False when it was already sent, the handoff was
    claimed or resolved meanwhile, or the session is not in human mode (a blocked customer
    is never told)."""

    tenant: TenantId
    handoff_id: str
    at_ms: int
    notice: str


@runtime_checkable
class Handoffs(Protocol):
    """Reads of handoffs and notes, scoped to ``tenant``."""

    async def current(self, tenant: TenantId, session_id: SessionId) -> Handoff | None:
        """The session's unresolved handoff."""
        ...

    async def get(self, tenant: TenantId, handoff_id: str) -> Handoff | None: ...

    async def inbox(
        self, tenant: TenantId, state: InboxState, now_ms: int, limit: int = 100
    ) -> list[InboxEntry]:
        """Open handoffs oldest waiting first (``RESOLVED``: newest resolved first)."""
        ...

    async def due(
        self,
        tenant: TenantId,
        now_ms: int,
        sla_ms: int,
        still_waiting_after_ms: int,
        limit: int = 100,
    ) -> list[Handoff]:
        """The open handoffs the mode watch has to act on at ``now_ms``, earliest due
        first, at most ``limit``: unresolved, with no live claim, of a session in human
        mode (a blocked customer's handoff waits for the lift), and either not yet marked
        past the SLA though waiting ``sla_ms`` (since it opened or the last operator
        reply), or never answered and not yet sent the "still waiting" notice though open
        ``still_waiting_after_ms``. A value of 0 leaves that action out. Acting on one
        (``MarkSlaBreached``, ``MarkStillWaiting``) takes it off the list, so the next
        call goes on with the rest."""
        ...

    async def waiting_count(self, tenant: TenantId, now_ms: int) -> int:
        """How many open handoffs of sessions in human mode nobody holds a live claim on
        at ``now_ms`` (the ``acf_handoffs_waiting`` gauge)."""
        ...

    async def history(self, tenant: TenantId, session_id: SessionId) -> list[Handoff]:
        """Every handoff of the session, oldest first."""
        ...

    async def notes(self, tenant: TenantId, session_id: SessionId) -> list[Note]:
        """The session's notes, oldest first."""
        ...
