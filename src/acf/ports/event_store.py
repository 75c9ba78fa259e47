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
    in_commit_order: bool = True
    """``False``: every event committed by now, without waiting for older transactions to
    end (for a lookup, such as a turn group's settlement; never for a cursor, which could
    then skip an event that commits later with a smaller id)."""
    newest_first: bool = False
    """Latest id first (the newest ``limit`` matching events): a lookup of a session's
    latest event of some kinds, read from the end of an index on (tenant, session, id). The
    customer's last typing signal is read through the partial index ``ix_events_typing``
    (migration 0012), which a query matches only when its kinds are written as the index's
    predicate (the SQL adapter writes kinds as sorted literals)."""


@runtime_checkable
class EventStore(Protocol):
    """Reads of events.

    Guarantees: events are never changed or removed by the runtime; an id is never given
    twice, even once its event was deleted; reads follow commit order, so ``after_id``
    resumes a stream without gaps or repeats (SSE Last-Event-ID): an event is read only
    once no event with a smaller id can still commit. On SQLite that is at its commit; on
    PostgreSQL, where an id is its transaction's id times 65536 plus its rank, once every
    transaction of the server older than its own has ended (normally milliseconds; a
    transaction held open on the server, in any database, holds events back until it ends,
    and loses none).
    """

    async def query(self, tenant: TenantId, query: EventQuery) -> list[FabricEvent]:
        """Matching events in id order (descending with ``newest_first``)."""
        ...

    async def last_id(self, tenant: TenantId) -> int:
        """The id of the tenant's latest readable event (0 when none): a stream that starts
        now resumes after it."""
        ...
