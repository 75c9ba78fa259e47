"""Tool backends: what the gateway calls to perform an action (a Python function, an HTTP
endpoint). The gateway owns the ledger, keys and policies; a backend only acts."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from acf.domain.tools import ToolSpec


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What a tool's handler receives. Send ``idempotency_key`` to the backend (an HTTP
    tool's ``Idempotency-Key`` header): retries and re-runs carry the same one."""

    args: Mapping[str, Any]
    idempotency_key: str
    execution_id: str
    attempt: int


Handler = Callable[[ToolCall], Awaitable[Any]]
"""Returns the JSON result; raises ``OutcomeUnknown`` when it cannot tell whether the action
happened, any other exception for a definite failure."""


class OutcomeUnknown(Exception):
    """The backend may or may not have acted (a timeout, a 5xx, a broken connection)."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What the backend says about a call whose outcome acf does not know."""

    happened: bool | None
    """True: it was done (``result`` is its result); False: it was not; None: unknown."""
    result: Any = None


Reconcile = Callable[[ToolCall], Awaitable[Reconciled]]


@dataclass(frozen=True, slots=True)
class Tool:
    spec: ToolSpec
    handler: Handler
    reconcile: Reconcile | None = None
    """Asked when a call is in doubt, before escalating to a person."""
