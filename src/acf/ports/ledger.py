"""Ledger: the write-ahead record of every tool execution (DESIGN §8).

A ``started`` row is written (in the same unit as the turn's ``CheckFence``) before the
tool runs, and its outcome after; an idempotency key is active until its TTL ends, so a
second call within the dedupe scope finds the first one instead of running again.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import GroupId, SessionId, TenantId, TurnId
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    tenant: TenantId
    execution_id: str
    idempotency_key: str
    tool: str
    policy: SideEffectPolicy
    status: LedgerStatus
    session_id: SessionId
    group_id: GroupId
    turn_id: TurnId
    customer: str
    args: Mapping[str, Any]
    started_at_ms: int
    expires_at_ms: int | None = None
    """When the key stops deduplicating (BUSINESS scope); ``None``: never."""
    finished_at_ms: int | None = None
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Begun:
    """What ``BeginExecution`` found: its own new row, or the key's active earlier one."""

    entry: LedgerEntry
    started: bool


@dataclass(frozen=True, slots=True)
class BeginExecution(WriteOp[Begun]):
    """Insert ``entry`` (status STARTED) unless its key is held: by an earlier row that
    succeeded and whose ``expires_at_ms`` is unset or later than the entry's
    ``started_at_ms``, or by a STARTED or IN_DOUBT row whatever its expiry (its outcome is
    unknown). Then nothing is written and that row is returned (``started=False``). A
    failed, compensated or expired row gives the key up. Atomic under a unique index on
    the holding row."""

    entry: LedgerEntry


# Status moves a finish may make: from -> allowed targets.
FINISH_MOVES: Mapping[LedgerStatus, frozenset[LedgerStatus]] = {
    LedgerStatus.STARTED: frozenset(
        {LedgerStatus.SUCCEEDED, LedgerStatus.FAILED, LedgerStatus.IN_DOUBT}
    ),
    LedgerStatus.IN_DOUBT: frozenset({LedgerStatus.SUCCEEDED, LedgerStatus.FAILED}),
    LedgerStatus.SUCCEEDED: frozenset({LedgerStatus.COMPENSATED}),
}


@dataclass(frozen=True, slots=True)
class FinishExecution(WriteOp[None]):
    """Record an outcome: ``started -> succeeded | failed | in_doubt``, ``in_doubt ->
    succeeded | failed`` (reconciled), ``succeeded -> compensated``. Raises ``Conflict``
    for any other move (an outcome is never overwritten)."""

    execution_id: str
    status: LedgerStatus
    at_ms: int
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    customer: str | None = None
    tool: str | None = None
    session_id: SessionId | None = None
    group_id: GroupId | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = 500


@runtime_checkable
class Ledger(Protocol):
    """Reads of the ledger. Guarantees: at most one active row per key; outcomes are never
    overwritten; rows are never removed by the runtime."""

    async def get(self, tenant: TenantId, execution_id: str) -> LedgerEntry | None: ...

    async def active(
        self, tenant: TenantId, idempotency_key: str, now_ms: int
    ) -> LedgerEntry | None:
        """The row holding the key at ``now_ms``, if any."""
        ...

    async def query(self, tenant: TenantId, where: LedgerQuery) -> list[LedgerEntry]:
        """Matching rows, oldest first."""
        ...
