"""Step memo: finished pipeline steps, reused by a restart or a recovery of the same group."""

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import GroupId, TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class MemoKey:
    group_id: GroupId
    name: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class RememberStep(WriteOp[Any]):
    """Store a step's JSON result under (group, name, input fingerprint).

    Idempotent: if a result is already stored under the key, it is kept and returned, so
    the first finished result wins and every reader sees the same one.
    """

    key: MemoKey
    result: Any
    at_ms: int


@runtime_checkable
class StepMemo(Protocol):
    """Guarantees: a stored result never changes; lookups are scoped to the tenant."""

    async def recall(self, tenant: TenantId, key: MemoKey) -> tuple[bool, Any]:
        """``(True, result)`` when the step finished before, else ``(False, None)``."""
        ...
