"""Unit of work: several ports' writes committed in one transaction, or none of them.

Writes are values (``WriteOp`` subclasses, defined beside the port they belong to). A
caller stages them in order and commits them together; the adapter applies them in order
inside one transaction. An op that is a guard (it checks a fence, a phase or a sequence)
raises ``acf.domain.errors.Conflict`` when its condition fails, and then nothing of the unit
is committed. Because writes are values, an adapter may apply many callers' units in one
physical transaction (group commit) while each unit stays atomic on its own.
"""

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from acf.domain.events import FabricEvent
from acf.domain.ids import TenantId

R = TypeVar("R")


class WriteOp(Generic[R]):
    """A write a unit of work applies; ``R`` is what applying it returns."""

    __slots__ = ()


class CommitResults:
    """What each op of a committed unit returned, looked up by the op itself, and the events
    its ops wrote themselves (``written_events``: an op's audit event written beside its
    rows, with its id; ``AppendEvent`` ops are not among them)."""

    __slots__ = ("_by_op", "written_events")

    def __init__(
        self,
        ops: Sequence[WriteOp[Any]],
        results: Sequence[object],
        written_events: Sequence[FabricEvent] = (),
    ) -> None:
        self._by_op = {id(op): result for op, result in zip(ops, results, strict=True)}
        self.written_events = tuple(written_events)

    def get(self, op: WriteOp[R]) -> R:
        return self._by_op[id(op)]  # type: ignore[return-value]


@runtime_checkable
class UnitOfWork(Protocol):
    """Commits staged writes atomically.

    Guarantees:
    - atomicity: all ops of one ``commit`` are durable together, or none is (a failing op or
      guard raises and leaves nothing behind);
    - durability: when ``commit`` returns, the writes are on disk at the adapter's stated
      durability level;
    - isolation: every op is applied for ``tenant`` only; no op can touch another tenant.
    """

    async def commit(self, tenant: TenantId, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        """Apply ``ops`` in order in one transaction; raises ``Conflict`` if a guard fails."""
        ...
