"""How an agent service turn ended, in the words of the turn record and the metrics
(DESIGN §16): the outcome category, what the customer reads when the service failed, and
the ``agent_service.execution`` event. Pure, table-tested.

The category, first match wins: the service failed or refused (a final ``ERROR``, a call
failed for good): FAILED; it asked the customer (``ASK_USER``): ASKED_USER; a tool of the
service with a side effect ended well during the execution: TOOL_DONE; else ANSWERED.

What the customer reads when it failed (the tenant's ``texts``): ``timed_out`` for a 408
and the timeouts, ``not_understood`` for a refused request (a 400 or other 4xx, a final
``ERROR`` the service says is not worth retrying), ``unavailable`` for everything else
(5xx after the retries, cut streams, an open circuit, a retryable ``ERROR`` that kept
failing, a rejected API key).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from acf.config.agent_service import AgentServiceTexts
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.llm.outcomes import Category

MAX_OFFSETS = 50
"""Events timed in one ``agent_service.execution`` event (the first ones)."""

TIMEOUTS = frozenset(
    {FailureKind.SERVICE_TIMEOUT, FailureKind.FIRST_EVENT_TIMEOUT, FailureKind.STREAM_TIMEOUT}
)
REFUSALS = frozenset({FailureKind.BAD_REQUEST})


class Ending(StrEnum):
    """How one execution ended (``agent_service.execution``'s ``outcome``)."""

    COMPLETE = "complete"
    ASK_USER = "ask_user"
    ERROR = "error"
    """A final ``ERROR`` event (the service refused or failed, and says so)."""
    FAILED = "failed"
    """The call failed for good (HTTP errors, timeouts, cut streams, an open circuit)."""
    SUPERSEDED = "superseded"
    """The turn was cancelled while the execution ran (the stream was closed)."""


def failure_text(kind: FailureKind | None, texts: AgentServiceTexts) -> str:
    """What the customer reads for a failure of ``kind`` (None: a final ``ERROR`` event
    that is not worth retrying)."""
    if kind is None or kind in REFUSALS:
        return texts.not_understood
    if kind in TIMEOUTS:
        return texts.timed_out
    return texts.unavailable


def category(ending: Ending, side_effect_done: bool) -> Category:
    """The turn's outcome category (see the module)."""
    if ending in (Ending.ERROR, Ending.FAILED, Ending.SUPERSEDED):
        return Category.FAILED
    if ending is Ending.ASK_USER:
        return Category.ASKED_USER
    if side_effect_done:
        return Category.TOOL_DONE
    return Category.ANSWERED


@dataclass(frozen=True, slots=True)
class ExecutionFacts:
    """What one execution did, for its event and the turn record."""

    profile: str
    endpoint: str
    ending: Ending
    attempts: int
    resumes: int
    duration_ms: int
    first_event_ms: int | None = None
    first_chunk_ms: int | None = None
    error_kind: str | None = None
    offsets: Sequence[tuple[str, int]] = ()
    """(event type, ms since the start) of the events seen, oldest first."""


def execution_event(facts: ExecutionFacts) -> dict[str, Any]:
    """The data of ``agent_service.execution`` (optional fields only when known)."""
    data: dict[str, Any] = {
        "profile": facts.profile,
        "endpoint": facts.endpoint,
        "outcome": facts.ending.value,
        "attempts": facts.attempts,
        "resumes": facts.resumes,
        "duration_ms": facts.duration_ms,
        "event_offsets_ms": [[kind, ms] for kind, ms in list(facts.offsets)[:MAX_OFFSETS]],
    }
    optional: Mapping[str, Any] = {
        "first_event_ms": facts.first_event_ms,
        "first_chunk_ms": facts.first_chunk_ms,
        "error_kind": facts.error_kind,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data
