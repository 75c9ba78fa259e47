"""Logical turns, turn groups and the phases a turn moves through (DESIGN §4)."""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.ids import GroupId, SessionId, TenantId, TraceId, TurnId
from acf.domain.modes import TurnKind


class TurnPhase(StrEnum):
    ACCUMULATING = "accumulating"
    RUNNING = "running"
    COMMITTED = "committed"
    SUPERSEDED = "superseded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    def can_move_to(self, target: "TurnPhase") -> bool:
        return target in _TRANSITIONS[self]


_TERMINAL = frozenset({TurnPhase.COMMITTED, TurnPhase.SUPERSEDED, TurnPhase.FAILED})
_TRANSITIONS: dict[TurnPhase, frozenset[TurnPhase]] = {
    TurnPhase.ACCUMULATING: frozenset({TurnPhase.RUNNING, TurnPhase.SUPERSEDED}),
    TurnPhase.RUNNING: frozenset(
        {TurnPhase.COMMITTED, TurnPhase.SUPERSEDED, TurnPhase.FAILED, TurnPhase.RUNNING}
    ),
    TurnPhase.COMMITTED: frozenset(),
    TurnPhase.SUPERSEDED: frozenset(),
    TurnPhase.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One run of the pipeline over the message range ``(from_seq, to_seq]``."""

    tenant: TenantId
    turn_id: TurnId
    session_id: SessionId
    group_id: GroupId
    phase: TurnPhase
    from_seq: int
    to_seq: int
    attempt: int
    fence: int
    irreversible_started: bool
    trace_id: TraceId
    created_at_ms: int
    updated_at_ms: int
    kind: TurnKind = TurnKind.AGENT
    """An agent's turn, an operator's reply (HUMAN) or a blocked customer's messages
    consumed without an answer (DROP)."""


class GroupStatus(StrEnum):
    OPEN = "open"
    COMMITTED = "committed"
    FAILED = "failed"
    HANDED_OFF = "handed_off"
    """The session left agent mode under the group's turn (handoff, cool-down, block): the
    group ends without a reply and without compensation."""


@dataclass(frozen=True, slots=True)
class TurnGroup:
    """One attempt by the user to get something done; shared by restarts and retries."""

    tenant: TenantId
    group_id: GroupId
    session_id: SessionId
    status: GroupStatus
    restarts: int
    attempts: int
    created_at_ms: int
