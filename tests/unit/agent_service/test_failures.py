"""How a failed call to the agent service is classified and retried (seed 004 Story 7):
503/502/504/429 and connection errors, cut streams and first-event timeouts retry; a 500
once; 408, 400, 401 never; an ERROR event when it says so; 1/2/4 s, never past the
deadline; and which failures the circuit breaker counts."""

import pytest

from acf.pipelines.agent_service.failures import (
    CallFailed,
    FailureKind,
    backoff_s,
    kind_for_status,
    parse_retry_after,
    retry_delay_s,
    retry_plan,
    trips_breaker,
)

K = FailureKind
NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
FAR = NOW + 3_600_000


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, K.SERVER_ERROR),
        (501, K.SERVER_ERROR),
        (502, K.UNAVAILABLE),
        (503, K.UNAVAILABLE),
        (504, K.UNAVAILABLE),
        (429, K.UNAVAILABLE),
        (408, K.SERVICE_TIMEOUT),
        (400, K.BAD_REQUEST),
        (404, K.BAD_REQUEST),
        (409, K.BAD_REQUEST),
        (422, K.BAD_REQUEST),
        (418, K.BAD_REQUEST),
        (401, K.UNAUTHORIZED),
        (403, K.UNAUTHORIZED),
        (302, K.SERVER_ERROR),  # a redirect is not followed: the service is misconfigured
    ],
)
def test_a_status_is_classified(status: int, kind: FailureKind) -> None:
    assert kind_for_status(status) is kind


@pytest.mark.parametrize(
    ("kind", "retryable", "attempt", "server_errors", "retried"),
    [
        (K.UNAVAILABLE, None, 1, 0, True),
        (K.UNAVAILABLE, None, 3, 0, True),
        (K.UNAVAILABLE, None, 4, 0, False),  # 3 retries spent
        (K.CUT, None, 1, 0, True),
        (K.CUT, None, 3, 0, True),
        (K.CUT, None, 4, 0, False),
        (K.FIRST_EVENT_TIMEOUT, None, 2, 0, True),
        (K.SERVER_ERROR, None, 1, 1, True),  # a 500 once
        (K.SERVER_ERROR, None, 2, 2, False),  # not twice
        (K.SERVER_ERROR, None, 3, 1, True),  # the first 500 after two 503s
        (K.SERVER_ERROR, None, 4, 1, False),  # but not past the budget
        (K.SERVICE_TIMEOUT, None, 1, 0, False),
        (K.BAD_REQUEST, None, 1, 0, False),
        (K.UNAUTHORIZED, None, 1, 0, False),
        (K.PROTOCOL, None, 1, 0, False),
        (K.STREAM_TIMEOUT, None, 1, 0, False),
        (K.AGENT_ERROR, True, 1, 0, True),
        (K.AGENT_ERROR, False, 1, 0, False),
        (K.AGENT_ERROR, None, 1, 0, False),
        (K.AGENT_ERROR, True, 4, 0, False),
    ],
)
def test_the_retry_plan(
    kind: FailureKind, retryable: bool | None, attempt: int, server_errors: int, retried: bool
) -> None:
    assert retry_plan(kind, retryable, attempt, server_errors) is retried


def test_the_retry_budget_is_the_callers() -> None:
    assert retry_plan(K.UNAVAILABLE, None, 1, 0, retries=0) is False
    assert retry_plan(K.UNAVAILABLE, None, 5, 0, retries=5) is True
    assert retry_plan(K.UNAVAILABLE, None, 6, 0, retries=5) is False


@pytest.mark.parametrize(("attempt", "wait"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (9, 4.0)])
def test_backoff_is_1_2_4_then_4_seconds(attempt: int, wait: float) -> None:
    assert backoff_s(attempt) == wait


def failed(status: int | None = None, retry_after_s: float | None = None) -> CallFailed:
    kind = K.CUT if status is None else kind_for_status(status)
    return CallFailed(kind, "x", status, retry_after_s)


@pytest.mark.parametrize(
    ("failure", "attempt", "deadline", "wait"),
    [
        (failed(503), 1, FAR, 1.0),
        (failed(503), 2, FAR, 2.0),
        (failed(), 3, FAR, 4.0),
        (failed(503, 7.0), 1, FAR, 7.0),  # Retry-After honoured
        (failed(429, 0.5), 2, FAR, 0.5),
        (failed(503, 120.0), 1, FAR, 30.0),  # at most 30 s
        (failed(500, 7.0), 1, FAR, 1.0),  # only a 429 or 503 is honoured
        (failed(503), 1, NOW + 1_000, None),  # it would end at the deadline
        (failed(503), 1, NOW + 1_001, 1.0),
        (failed(503, 7.0), 1, NOW + 5_000, None),  # Retry-After past the deadline
    ],
)
def test_the_wait_before_a_retry(
    failure: CallFailed, attempt: int, deadline: int, wait: float | None
) -> None:
    assert retry_delay_s(failure, attempt, NOW, deadline) == wait


@pytest.mark.parametrize(
    ("failure", "counted"),
    [
        (CallFailed(K.UNAVAILABLE, "x", 503), True),
        (CallFailed(K.UNAVAILABLE, "connection refused"), True),
        (CallFailed(K.UNAVAILABLE, "x", 429), False),  # one caller's quota
        (CallFailed(K.SERVER_ERROR, "x", 500), True),
        (CallFailed(K.SERVICE_TIMEOUT, "x", 408), True),
        (CallFailed(K.FIRST_EVENT_TIMEOUT, "x"), True),
        (CallFailed(K.STREAM_TIMEOUT, "x"), True),
        (CallFailed(K.CUT, "x"), True),
        (CallFailed(K.PROTOCOL, "x"), True),
        (CallFailed(K.BAD_REQUEST, "x", 400), False),
        (CallFailed(K.UNAUTHORIZED, "x", 401), False),
        (CallFailed(K.AGENT_ERROR, "x", retryable=True), False),
    ],
)
def test_what_the_breaker_counts(failure: CallFailed, counted: bool) -> None:
    assert trips_breaker(failure) is counted


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("Tue, 14 Nov 2023 22:13:32 GMT", 12.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),  # in the past: no wait
        ("99999999", 86_400.0),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_a_call_failed_says_its_kind_and_status_in_its_repr() -> None:
    failure = CallFailed(K.UNAVAILABLE, "HTTP 503: busy", 503, 2.0)
    assert repr(failure) == "CallFailed(unavailable, 'HTTP 503: busy', status=503)"
    assert (str(failure), failure.retry_after_s, failure.retryable) == ("HTTP 503: busy", 2.0, None)
