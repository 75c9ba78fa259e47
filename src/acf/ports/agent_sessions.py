"""Agent sessions: which session of an external agent service a conversation talks to
(DESIGN §16, seed 004 Story 2).

One row per conversation (acf session) and agent session. Its status:

- ACTIVE: an execution runs, or the service answered and the agent session may go on;
- AWAITING_USER: the service asked the customer (``pending_ask_id``, ``pending_question``);
- COMPLETED: the last execution completed (the agent session id is kept, so the next
  delegated turn resumes it);
- FAILED: the service failed for good, or refused the request;
- ABANDONED: a question went unanswered past its timeout.

At most one row per conversation is ACTIVE or AWAITING_USER (a unique partial index): a
second open row for the same conversation raises ``AgentSessionConflict`` and nothing of
the unit commits. The execution key (``execution_key``) is written before the request that
sends it, with the turn's fence, so a retry, a resumed stream or a recovery after a crash
sends the same key and the service can deduplicate.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from acf.domain.errors import Conflict
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


class AgentSessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    AWAITING_USER = "AWAITING_USER"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"

    @property
    def is_open(self) -> bool:
        return self in (AgentSessionStatus.ACTIVE, AgentSessionStatus.AWAITING_USER)


class AgentSessionConflict(Conflict):
    """The conversation already has an open (ACTIVE or AWAITING_USER) agent session."""


@dataclass(frozen=True, slots=True)
class AgentSessionRow:
    tenant: TenantId
    row_id: str
    """acf's id of the row (``new_id()``), stable while the row lives."""
    session_id: SessionId
    """The conversation: acf's session id (sent as ``conversation_id``)."""
    agent: AgentId
    """The acf agent whose pipeline talks to the service."""
    profile: str
    status: AgentSessionStatus
    created_at_ms: int
    last_interaction_at_ms: int
    agent_session_id: str | None = None
    """The service's id, once it named one (``X-Agent-Session-Id``)."""
    pending_ask_id: str | None = None
    pending_question: str | None = None
    pending_options: tuple[str, ...] = ()
    asked_at_ms: int | None = None
    execution_key: str | None = None
    """The ``Idempotency-Key`` of the current (or last) execution."""
    execution_input: str | None = None
    """A fingerprint of what that execution was asked (a change means a new execution)."""
    execution_open: bool = False
    """The execution has not ended definitely (no COMPLETE, ASK_USER or final ERROR yet)."""
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class SaveAgentSession(WriteOp[None]):
    """Insert ``row`` (a new ``row_id``) or replace the stored row with that id (same
    tenant). Raises ``AgentSessionConflict`` when it would make a second open row of the
    conversation. Commit it with the turn's fence guard in the same unit."""

    row: AgentSessionRow


@runtime_checkable
class AgentSessions(Protocol):
    """Guarantees: every read is scoped to its tenant; at most one open row per
    conversation; rows are never deleted by acf (their history stays queryable)."""

    async def open_for(self, tenant: TenantId, session_id: SessionId) -> AgentSessionRow | None:
        """The conversation's ACTIVE or AWAITING_USER row, if any."""
        ...

    async def latest_for(
        self, tenant: TenantId, session_id: SessionId, agent: AgentId
    ) -> AgentSessionRow | None:
        """The conversation's most recently used row of ``agent`` (any status)."""
        ...

    async def list_for(self, tenant: TenantId, session_id: SessionId) -> Sequence[AgentSessionRow]:
        """Every row of the conversation, oldest first."""
        ...

    async def by_agent_session(
        self, tenant: TenantId, agent_session_id: str
    ) -> AgentSessionRow | None:
        """The row naming the service's ``agent_session_id`` (the reverse lookup)."""
        ...
