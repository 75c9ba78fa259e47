"""When a failed model request is retried: backoff 1/2/4 s, Retry-After, 4xx, the deadline;
and which failures the endpoint's circuit breaker counts (not a 429)."""

import pytest

from acf.pipelines.llm.retry import (
    Failure,
    FailureKind,
    GiveUp,
    GiveUpReason,
    Retry,
    RetryPolicy,
    decide,
    retry_after_ms,
)

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
FAR = NOW + 3_600_000
K = FailureKind


def status(code: int, retry_after: str | None = None) -> Failure:
    return Failure(K.HTTP_STATUS, code, retry_after)


@pytest.mark.parametrize(
    ("failure", "attempt", "deadline", "expected"),
    [
        # transient: 1 s, 2 s, 4 s, then this model is given up
        (status(500), 1, FAR, Retry(1_000)),
        (status(500), 2, FAR, Retry(2_000)),
        (status(502), 3, FAR, Retry(4_000)),
        (status(500), 4, FAR, GiveUp(GiveUpReason.RETRIES_SPENT)),
        (Failure(K.CONNECTION), 1, FAR, Retry(1_000)),
        (Failure(K.TIMEOUT), 2, FAR, Retry(2_000)),
        (Failure(K.CUT_STREAM), 3, FAR, Retry(4_000)),
        (Failure(K.CONNECTION), 4, FAR, GiveUp(GiveUpReason.RETRIES_SPENT)),
        (status(408), 1, FAR, Retry(1_000)),
        # 429 (and 503) honour Retry-After, in seconds or as a date, capped at 30 s
        (status(429), 1, FAR, Retry(1_000)),
        (status(429, "7"), 1, FAR, Retry(7_000)),
        (status(429, "0"), 2, FAR, Retry(0)),
        (status(429, "1.5"), 1, FAR, Retry(1_500)),
        (status(429, "120"), 1, FAR, Retry(30_000)),
        (status(429, "Tue, 14 Nov 2023 22:13:32 GMT"), 1, FAR, Retry(12_000)),
        (status(429, "Tue, 14 Nov 2023 22:00:00 GMT"), 1, FAR, Retry(0)),  # in the past
        (status(429, "soon"), 2, FAR, Retry(2_000)),  # unreadable: the backoff
        (status(429, "-3"), 1, FAR, Retry(1_000)),
        (status(503, "3"), 1, FAR, Retry(3_000)),
        (status(500, "3"), 1, FAR, Retry(1_000)),  # only 429 and 503 are honoured
        (status(429, "7"), 4, FAR, GiveUp(GiveUpReason.RETRIES_SPENT)),
        # the request is wrong for this model: never retried
        (status(400), 1, FAR, GiveUp(GiveUpReason.NOT_RETRYABLE)),
        (status(401), 1, FAR, GiveUp(GiveUpReason.NOT_RETRYABLE)),
        (status(403), 1, FAR, GiveUp(GiveUpReason.NOT_RETRYABLE)),
        (status(404), 1, FAR, GiveUp(GiveUpReason.NOT_RETRYABLE)),
        (status(422, "1"), 1, FAR, GiveUp(GiveUpReason.NOT_RETRYABLE)),
        # no retry whose wait ends at or after the deadline
        (status(500), 1, NOW + 1_000, GiveUp(GiveUpReason.DEADLINE)),
        (status(500), 1, NOW + 1_001, Retry(1_000)),
        (status(500), 3, NOW + 3_999, GiveUp(GiveUpReason.DEADLINE)),
        (status(429, "20"), 1, NOW + 10_000, GiveUp(GiveUpReason.DEADLINE)),
        (status(429, "120"), 1, NOW + 30_001, Retry(30_000)),
        (Failure(K.TIMEOUT), 1, NOW, GiveUp(GiveUpReason.DEADLINE)),
        (status(400), 1, NOW, GiveUp(GiveUpReason.NOT_RETRYABLE)),
    ],
)
def test_decide(failure: Failure, attempt: int, deadline: int, expected: Retry | GiveUp) -> None:
    assert decide(failure, attempt, NOW, deadline) == expected


def test_a_policy_sets_the_backoff_and_the_cap() -> None:
    policy = RetryPolicy(backoff_ms=(100, 300), max_retry_after_ms=5_000)
    assert decide(status(500), 2, NOW, FAR, policy) == Retry(300)
    assert decide(status(500), 3, NOW, FAR, policy) == GiveUp(GiveUpReason.RETRIES_SPENT)
    assert decide(status(429, "60"), 1, NOW, FAR, policy) == Retry(5_000)
    assert decide(status(500), 1, NOW, FAR, RetryPolicy(backoff_ms=())) == GiveUp(
        GiveUpReason.RETRIES_SPENT
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("5", 5_000),
        (" 2 ", 2_000),
        ("0.25", 250),
        ("-1", None),
        ("nan", None),
        ("later", None),
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60_000),
        ("Tue, 14 Nov 2023 22:14:20", None),  # a date without its zone is not guessed
        ("Mon, 13 Nov 2023 00:00:00 GMT", 0),
    ],
)
def test_retry_after_ms(value: str | None, expected: int | None) -> None:
    assert retry_after_ms(value, NOW) == expected


@pytest.mark.parametrize(
    ("failure", "retryable", "trips_breaker", "reason"),
    [
        # a 429 is retried, but the endpoint answered: one tenant's quota, not its failure
        (status(429), True, False, "http_429"),
        (status(429, "7"), True, False, "http_429"),
        (status(500), True, True, "http_500"),
        (status(503, "3"), True, True, "http_503"),
        (status(599), True, True, "http_599"),
        (status(408), True, True, "http_408"),
        (status(400), False, False, "http_400"),
        (status(409), False, False, "http_409"),
        (Failure(K.CONNECTION), True, True, "connection"),
        (Failure(K.TIMEOUT), True, True, "timeout"),
        (Failure(K.CUT_STREAM), True, True, "cut_stream"),
    ],
)
def test_failure_kinds(failure: Failure, retryable: bool, trips_breaker: bool, reason: str) -> None:
    assert (failure.retryable, failure.trips_breaker, failure.reason) == (
        retryable,
        trips_breaker,
        reason,
    )
