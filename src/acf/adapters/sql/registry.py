"""Which function applies which write op on a connection (either dialect)."""

import json
from collections.abc import Callable
from typing import Any, TypeVar

from acf.adapters.sql.database import SqlConnection
from acf.domain.errors import InvalidValue
from acf.ports.unit_of_work import WriteOp

Op = TypeVar("Op", bound=WriteOp[Any])
Executor = Callable[[SqlConnection, str, Any], Any]

EXECUTORS: dict[type[WriteOp[Any]], Executor] = {}


def executes(op_type: type[Op]) -> Callable[[Callable[[SqlConnection, str, Op], Any]], Any]:
    """Register the decorated function as the executor of ``op_type``."""

    def register(fn: Callable[[SqlConnection, str, Op], Any]) -> Any:
        EXECUTORS[op_type] = fn
        return fn

    return register


def require_tenant(unit_tenant: str, value_tenant: str) -> None:
    if unit_tenant != value_tenant:
        raise InvalidValue(
            f"a unit of work for tenant {unit_tenant!r} cannot write tenant {value_tenant!r}"
        )


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
