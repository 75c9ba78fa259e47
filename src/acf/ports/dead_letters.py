"""Dead letters: turns whose agent failed for good, for a person to inspect and replay
(DESIGN §16, seed 004 Story 7).

A turn that ends FAILED, or whose pipeline answered with the tenant's fallback because its
brain (model, agent service) failed for good, is recorded with what was asked, the error,
the attempts and the trace id. ``acf dead-letters replay`` (or the API) runs it again as a
REPLAY turn of the same session with an empty message range, once: the replay is claimed
with a guard, so two replays of one dead letter cannot both run.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from acf.domain.errors import Conflict
from acf.domain.ids import AgentId, GroupId, SessionId, TenantId, TraceId, TurnId
from acf.ports.unit_of_work import WriteOp


class AlreadyReplayed(Conflict):
    """The dead letter was replayed (or its replay requested) before."""


class NoSuchDeadLetter(Conflict):
    """No dead letter of the tenant has that id."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    tenant: TenantId
    dead_letter_id: str
    session_id: SessionId
    agent: AgentId
    turn_id: TurnId
    group_id: GroupId
    trace_id: TraceId
    pipeline: str
    """The pipeline's name (its kind for the built-in ones)."""
    error: str
    """What failed, in words safe to show (no secret, no payload)."""
    attempts: int
    created_at_ms: int
    request: Mapping[str, Any] = field(default_factory=dict)
    """What the agent was asked (redacted: no header, no credential)."""
    replay_requested_at_ms: int | None = None
    replay_turn_id: TurnId | None = None
    """The REPLAY turn that ran it, once it committed or failed."""
    replayed_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RecordDeadLetter(WriteOp[None]):
    """Store ``letter`` (a new id; the same id twice keeps the first)."""

    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class RequestReplay(WriteOp[None]):
    """Mark the dead letter's replay requested; raises ``AlreadyReplayed`` when it was
    requested before, and ``NoSuchDeadLetter`` when the tenant has no such letter."""

    dead_letter_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class FinishReplay(WriteOp[None]):
    """Record the REPLAY turn that ran the dead letter (with that turn's commit)."""

    dead_letter_id: str
    turn_id: TurnId
    at_ms: int


@runtime_checkable
class DeadLetters(Protocol):
    """Guarantees: scoped to the tenant; a dead letter's replay is requested at most once."""

    async def get(self, tenant: TenantId, dead_letter_id: str) -> DeadLetter | None: ...

    async def list(
        self, tenant: TenantId, *, limit: int = 100, session_id: SessionId | None = None
    ) -> Sequence[DeadLetter]:
        """Newest first."""
        ...

    async def pending_replay(self, tenant: TenantId, session_id: SessionId) -> DeadLetter | None:
        """The session's oldest dead letter whose replay was requested and has not run."""
        ...
