"""Event store: the append-only audit trail of FabricEvents."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class AppendEvent(WriteOp[int]):
    """Append an event; returns its id. The event's tenant must be the unit's tenant."""

    event: FabricEvent


@dataclass(frozen=True, slots=True)
class EventQuery:
    session_id: SessionId | None = None
    kinds: Sequence[EventKind] = ()
    after_id: int = 0
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = 500


@runtime_checkable
class EventStore(Protocol):
    """Reads of events.

    Guarantees: events are never changed or removed by the runtime; ids increase in commit
    order, so ``after_id`` resumes a stream without gaps or repeats (SSE Last-Event-ID).
    """

    async def query(self, tenant: TenantId, query: EventQuery) -> list[FabricEvent]:
        """Matching events in id order."""
        ...
