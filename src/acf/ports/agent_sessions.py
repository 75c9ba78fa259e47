"""The agent sessions store (DESIGN §16, seed 004 Story 2): which session of an external
agent service a conversation talks to. The row and its statuses are domain values
(``acf.domain.agent_sessions``).

At most one row per conversation is ACTIVE or AWAITING_USER (a unique partial index): a
second open row for the same conversation raises ``AgentSessionConflict`` and nothing of
the unit commits. A row is written with the turn's fence: the execution key ahead of the
request that sends it (``ctx.agent_sessions.save``), so a retry, a resumed stream or a
recovery after a crash sends the same key and the service can deduplicate; how the
execution ended with the turn's commit (``PipelineResult.agent_session``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.errors import Conflict
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


class AgentSessionConflict(Conflict):
    """The conversation already has an open (ACTIVE or AWAITING_USER) agent session."""


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
