"""Agent sessions: which session of an external agent service a conversation talks to
(DESIGN §16, seed 004 Story 2). Pure values; the store is ``acf.ports.agent_sessions``.

One row per conversation (acf session) and agent session. Its status:

- ACTIVE: an execution runs, or the service answered and the agent session may go on;
- AWAITING_USER: the service asked the customer (``pending_ask_id``, ``pending_question``);
- COMPLETED: the last execution completed (the agent session id is kept, so the next
  delegated turn resumes it);
- FAILED: the service failed for good, or refused the request;
- ABANDONED: a question went unanswered past its timeout.

The execution key (``execution_key``) is written before the request that sends it, so a
retry, a resumed stream or a recovery after a crash sends the same key and the service can
deduplicate. How an execution ended (COMPLETED, AWAITING_USER, FAILED) is written with the
turn's commit (``PipelineResult.agent_session``), never by a turn that is superseded.
"""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.ids import AgentId, SessionId, TenantId


class AgentSessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    AWAITING_USER = "AWAITING_USER"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"

    @property
    def is_open(self) -> bool:
        return self in (AgentSessionStatus.ACTIVE, AgentSessionStatus.AWAITING_USER)


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
