"""How an agent service turn ended (``acf.pipelines.agent_service.outcome``): the
category, the tenant's text for each failure, and the ``agent_service.execution`` event."""

import pytest

from acf.config.agent_service import AgentServiceTexts
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.agent_service.outcome import (
    MAX_OFFSETS,
    Ending,
    ExecutionFacts,
    category,
    execution_event,
    failure_text,
)
from acf.pipelines.llm.outcomes import Category

TEXTS = AgentServiceTexts(unavailable="U", timed_out="T", not_understood="N", ask_expired="E")
K = FailureKind


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (None, "N"),  # a final ERROR the service says is not worth retrying
        (K.BAD_REQUEST, "N"),
        (K.SERVICE_TIMEOUT, "T"),
        (K.FIRST_EVENT_TIMEOUT, "T"),
        (K.STREAM_TIMEOUT, "T"),
        (K.UNAVAILABLE, "U"),
        (K.SERVER_ERROR, "U"),
        (K.CUT, "U"),
        (K.PROTOCOL, "U"),
        (K.UNAUTHORIZED, "U"),
        (K.AGENT_ERROR, "U"),  # a retryable ERROR that kept failing
    ],
)
def test_what_the_customer_reads(kind: FailureKind | None, text: str) -> None:
    assert failure_text(kind, TEXTS) == text


def test_every_failure_kind_has_a_text() -> None:
    assert {failure_text(k, TEXTS) for k in FailureKind} <= {"U", "T", "N"}


@pytest.mark.parametrize(
    ("ending", "side_effect", "expected"),
    [
        (Ending.COMPLETE, False, Category.ANSWERED),
        (Ending.COMPLETE, True, Category.TOOL_DONE),
        (Ending.ASK_USER, True, Category.ASKED_USER),
        (Ending.ERROR, True, Category.FAILED),
        (Ending.FAILED, False, Category.FAILED),
        (Ending.SUPERSEDED, False, Category.FAILED),
    ],
)
def test_the_category(ending: Ending, side_effect: bool, expected: Category) -> None:
    assert category(ending, side_effect) is expected


def test_the_execution_event() -> None:
    facts = ExecutionFacts(
        profile="support",
        endpoint="http://127.0.0.1:80",
        ending=Ending.COMPLETE,
        attempts=2,
        resumes=1,
        duration_ms=40,
        first_event_ms=5,
        offsets=[("THOUGHT", 5), ("COMPLETE", 40)],
    )
    assert execution_event(facts) == {
        "profile": "support",
        "endpoint": "http://127.0.0.1:80",
        "outcome": "complete",
        "attempts": 2,
        "resumes": 1,
        "duration_ms": 40,
        "first_event_ms": 5,
        "event_offsets_ms": [["THOUGHT", 5], ["COMPLETE", 40]],
    }
    many = ExecutionFacts(
        "p", "e", Ending.FAILED, 1, 0, 0, error_kind="cut", offsets=[("X", i) for i in range(99)]
    )
    data = execution_event(many)
    assert data["error_kind"] == "cut" and "first_event_ms" not in data
    assert len(data["event_offsets_ms"]) == MAX_OFFSETS
