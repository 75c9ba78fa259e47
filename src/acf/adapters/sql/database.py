"""What the SQL adapters need from a database, whichever it is (SQLite or PostgreSQL).

The port adapters in this package are written once, as functions of a ``SqlConnection``
run inside one transaction: ``Database.read`` and ``Database.write`` run such a function
and return its result. SQL is written with ``?`` placeholders and the few constructs both
dialects share; where they differ, the connection's ``dialect`` says how:

- ``acf_now(?)``: the time deadlines are compared with. SQLite returns the caller's clock
  (the argument); PostgreSQL returns the database's clock (DESIGN §4: in distributed mode
  deadlines are compared with one clock, the database's), unless the connection was opened
  to follow the caller's clock (tests on a virtual clock).
- ``dialect.turn_order`` / ``ledger_order``: how rows of one session are listed in the
  order they were written; ``dialect.event_id``: the id of a new event.

Each read and write names its tenant. PostgreSQL runs it under row-level security set to
that tenant; ``SCANNER`` (no tenant) is the one cross-tenant scope, for recovery scans and
API-key lookups, and is run under the role allowed to see all tenants.
"""

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

SCANNER: None = None
"""The tenant argument of a read that crosses tenants (recovery, API-key lookup)."""


def _integrity_errors() -> tuple[type[Exception], ...]:
    # PostgreSQL's driver is the postgres extra: without it, no connection raises its error.
    try:
        from psycopg import IntegrityError
    except ImportError:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, IntegrityError)


INTEGRITY_ERRORS = _integrity_errors()
"""What a unique or check constraint violation raises, in either dialect."""


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    turn_order: str
    """ORDER BY for a session's turns as created."""
    ledger_order: str
    """ORDER BY for ledger entries as started (ties within a millisecond: any order on
    PostgreSQL)."""
    event_id: str
    """The value of a new event's id: SQLite's rowid; on PostgreSQL the transaction id
    times 65536 plus the event's rank in its transaction, so ids follow commit order for
    readers that only look below the oldest running transaction (``visible_events``)."""
    visible_events: str
    """A clause (starting with AND, or empty) keeping event reads in commit order: on
    PostgreSQL, events of transactions that may still commit below a returned id wait."""
    lock_shared: str
    """Appended to a SELECT whose row must not change before this transaction ends (a
    fence check: a new holder's takeover waits for the old holder's commit)."""


SQLITE = Dialect(
    "sqlite",
    turn_order="created_at_ms, rowid",
    ledger_order="started_at_ms, rowid",
    event_id="NULL",
    visible_events="",
    lock_shared="",
)
POSTGRESQL = Dialect(
    "postgresql",
    # A restart has the superseded turn's from_seq and a greater to_seq; a later turn starts
    # where the earlier one ended.
    turn_order="created_at_ms, from_seq, to_seq",
    ledger_order="started_at_ms, execution_id",
    event_id="acf_next_event_id()",
    visible_events="AND event_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536",
    lock_shared=" FOR SHARE",
)


class SqlCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """One connection inside one transaction, with ``?`` placeholders."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> SqlCursor: ...


class Database(Protocol):
    """Runs functions of a connection in transactions; the event loop never blocks."""

    @property
    def dialect(self) -> Dialect: ...

    async def read(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` in a transaction scoped to ``tenant`` (``SCANNER``: all tenants)."""
        ...

    async def write(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` atomically; return once it is committed (and durable)."""
        ...

    async def write_alone(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """As ``write``, in a transaction shared with no other job (taking and renewing
        leases: the rows they lock are released at once, and a renewal's timing is the
        holder's safety)."""
        ...
