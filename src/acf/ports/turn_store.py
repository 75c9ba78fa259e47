"""Turn store: turns and turn groups, changed only by compare-and-set (DESIGN §4)."""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import GroupId, SessionId, TenantId, TurnId
from acf.domain.records import TurnRecord
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class OpenGroup(WriteOp[None]):
    """Create a turn group (no-op if it exists already: retries may stage it twice)."""

    group: TurnGroup


@dataclass(frozen=True, slots=True)
class UpdateGroup(WriteOp[None]):
    """Set a group's status and counters; raises ``Conflict`` if the group is not OPEN."""

    group_id: GroupId
    status: GroupStatus
    restarts: int
    attempts: int


@dataclass(frozen=True, slots=True)
class CreateTurn(WriteOp[None]):
    """Insert a turn. Raises ``Conflict`` when the session already has a live turn.

    Live means ACCUMULATING or RUNNING; a unique index enforces at most one per session.
    """

    turn: Turn


@dataclass(frozen=True, slots=True)
class MoveTurn(WriteOp[None]):
    """Compare-and-set a turn's phase.

    Raises ``Conflict`` unless the turn is in ``expected``, its fence is ``fence``, and the
    session's lease is live at ``at_ms`` with fence ``new_fence`` (or ``fence``).
    ``to_seq`` (optional) extends the range, as ``absorb`` and the window do; ``attempt``
    and ``fence`` of the row are replaced by ``new_attempt`` / ``new_fence`` when given.
    """

    turn_id: TurnId
    expected: TurnPhase
    target: TurnPhase
    fence: int
    at_ms: int
    to_seq: int | None = None
    new_attempt: int | None = None
    new_fence: int | None = None


@dataclass(frozen=True, slots=True)
class MarkIrreversibleStarted(WriteOp[None]):
    """The irreversible gate (DESIGN §6): one conditional write.

    Sets ``irreversible_started`` where the fence (on the turn and on the session's live
    lease), ``phase = RUNNING`` and, unless
    ``force`` is set, the session's ``last_seq = to_seq`` all still hold. Raises ``Conflict``
    with reason ``"new_messages"`` when only the last condition fails, ``"fence"`` or
    ``"phase"`` otherwise.
    """

    turn_id: TurnId
    fence: int
    force: bool
    at_ms: int


@dataclass(frozen=True, slots=True)
class SaveTurnRecord(WriteOp[None]):
    """Write the TurnRecord of a turn (once; a second write for the same turn conflicts)."""

    record: TurnRecord


@runtime_checkable
class TurnStore(Protocol):
    """Reads of turns, groups and records.

    Guarantees: at most one live (ACCUMULATING or RUNNING) turn per session; phases move
    only along DESIGN §4's arrows, by compare-and-set; terminal phases never change.
    """

    async def get(self, tenant: TenantId, turn_id: TurnId) -> Turn | None: ...

    async def live_turn(self, tenant: TenantId, session_id: SessionId) -> Turn | None: ...

    async def list_turns(self, tenant: TenantId, session_id: SessionId) -> list[Turn]:
        """Oldest first."""
        ...

    async def get_group(self, tenant: TenantId, group_id: GroupId) -> TurnGroup | None: ...

    async def get_record(self, tenant: TenantId, turn_id: TurnId) -> TurnRecord | None: ...
