"""When a failed model request is tried again (DESIGN §16): pure, on millisecond timestamps.

A failure is classified by what the client saw (an HTTP status with its ``Retry-After``
header, a connection error, a timeout, a stream cut before its end). Transient ones (429,
408, 5xx, connection, timeout, cut stream) are retried after 1 s, 2 s, then 4 s, at most
three times; a 429 or 503 with ``Retry-After`` (seconds or an HTTP date) waits what it asks,
at most 30 s. Any other 4xx (400, 401, 403, 404, 422...) is never retried: the request
itself is wrong for this model, so the client moves on to its next one. No retry is
scheduled whose wait would end at or after the deadline.

What the endpoint's circuit breaker counts (``Failure.trips_breaker``) is narrower: the
transient failures but 429. A 429 is the endpoint answering, about one caller's quota (its
``Retry-After`` governs that caller's wait): counted, one tenant's rate limit would open
the circuit for every tenant of the endpoint.
"""

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRYABLE_4XX = frozenset({408, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})


class FailureKind(StrEnum):
    HTTP_STATUS = "http_status"
    CONNECTION = "connection"
    """The endpoint could not be reached, or the connection broke before an answer."""
    TIMEOUT = "timeout"
    CUT_STREAM = "cut_stream"
    """The answer's stream ended (or broke) before its finish: what was streamed is void."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed request, as the retry policy and the circuit breaker see it."""

    kind: FailureKind
    status: int | None = None
    """The HTTP status, for ``HTTP_STATUS``."""
    retry_after: str | None = None
    """The raw ``Retry-After`` header of the answer, if it had one."""

    @property
    def retryable(self) -> bool:
        """Whether trying again can help."""
        if self.kind is not FailureKind.HTTP_STATUS:
            return True
        status = self.status or 0
        return status >= 500 or status in RETRYABLE_4XX

    @property
    def trips_breaker(self) -> bool:
        """Whether the endpoint's circuit breaker counts it as a failure: a 5xx, a 408, a
        connection error, a timeout or a cut stream. Any other answer, a 429 included, is
        a sign of life."""
        return self.retryable and self.status != 429

    @property
    def reason(self) -> str:
        """A short name for events and messages: ``http_429``, ``connection``, ..."""
        if self.kind is FailureKind.HTTP_STATUS:
            return f"http_{self.status}"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff_ms: tuple[int, ...] = (1_000, 2_000, 4_000)
    """The wait before each retry, in order; its length is the number of retries."""
    max_retry_after_ms: int = 30_000
    """A longer ``Retry-After`` is waited this long."""


@dataclass(frozen=True, slots=True)
class Retry:
    delay_ms: int


class GiveUpReason(StrEnum):
    NOT_RETRYABLE = "not_retryable"
    RETRIES_SPENT = "retries_spent"
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop asking this model (the client tries its next one, time allowing)."""

    reason: GiveUpReason


def retry_after_ms(value: str | None, now_ms: int) -> int | None:
    """The wait a ``Retry-After`` header asks for: delta-seconds or an HTTP date (a date in
    the past is no wait); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0, round(when.timestamp() * 1000) - now_ms)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return round(min(seconds, 86_400.0) * 1000)


def decide(
    failure: Failure,
    attempt: int,
    now_ms: int,
    deadline_ms: int,
    policy: RetryPolicy = RetryPolicy(),
) -> Retry | GiveUp:
    """What follows the failure of ``attempt`` (1 for the first request to this model)."""
    if not failure.retryable:
        return GiveUp(GiveUpReason.NOT_RETRYABLE)
    if attempt > len(policy.backoff_ms):
        return GiveUp(GiveUpReason.RETRIES_SPENT)
    delay = policy.backoff_ms[attempt - 1]
    if failure.kind is FailureKind.HTTP_STATUS and failure.status in RETRY_AFTER_STATUSES:
        asked = retry_after_ms(failure.retry_after, now_ms)
        if asked is not None:
            delay = min(asked, policy.max_retry_after_ms)
    if now_ms + delay >= deadline_ms:
        return GiveUp(GiveUpReason.DEADLINE)
    return Retry(delay)
