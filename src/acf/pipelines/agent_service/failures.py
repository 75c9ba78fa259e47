"""What went wrong with a call to the agent service, and whether trying again can help
(seed 004 Story 7, DESIGN §16): pure, table-tested.

A failure is classified by what the client saw (``kind_for_status`` for an HTTP status):

=====================  ===============================================  ================
kind                   seen                                             retried
=====================  ===============================================  ================
UNAVAILABLE            502, 503, 504, 429, connection refused or reset  yes
SERVER_ERROR           500                                              once
SERVICE_TIMEOUT        408                                              never
BAD_REQUEST            400, 404, 409, 422 and any other 4xx             never
UNAUTHORIZED           401, 403                                         never
FIRST_EVENT_TIMEOUT    no event within the first-event timeout          yes
STREAM_TIMEOUT         no final event within the stream timeout         never
CUT                    the stream ended or broke before a final event   yes (resumed)
PROTOCOL               an event the protocol does not allow             never
AGENT_ERROR            an ``ERROR`` event                               if ``retryable``
=====================  ===============================================  ================

Retries wait 1, 2, then 4 s (4 s after that) on the turn's clock; a 429 or 503 with
``Retry-After`` waits what it asks, at most ``MAX_RETRY_AFTER_S``. No wait may end at or
after the turn's deadline: the call fails with its last failure instead.

What the endpoint's circuit breaker counts (``trips_breaker``) is narrower than what is
retried: the endpoint's own failures (5xx, 408, connection, timeouts, cut streams,
protocol errors), not a 429 (one caller's quota) nor a 4xx or an ``ERROR`` event (the
service answered).
"""

from email.utils import parsedate_to_datetime
from enum import StrEnum

BACKOFF_S = (1.0, 2.0, 4.0)
"""The wait before the 1st, 2nd, 3rd retry; later retries wait the last one."""
MAX_RETRY_AFTER_S = 30.0
MAX_MESSAGE_CHARS = 200


class FailureKind(StrEnum):
    UNAVAILABLE = "unavailable"
    SERVER_ERROR = "server_error"
    SERVICE_TIMEOUT = "service_timeout"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FIRST_EVENT_TIMEOUT = "first_event_timeout"
    STREAM_TIMEOUT = "stream_timeout"
    CUT = "cut"
    PROTOCOL = "protocol"
    AGENT_ERROR = "agent_error"


ALWAYS_RETRIED = frozenset(
    {FailureKind.UNAVAILABLE, FailureKind.FIRST_EVENT_TIMEOUT, FailureKind.CUT}
)
ENDPOINT_FAILURES = frozenset(
    {
        FailureKind.UNAVAILABLE,
        FailureKind.SERVER_ERROR,
        FailureKind.SERVICE_TIMEOUT,
        FailureKind.FIRST_EVENT_TIMEOUT,
        FailureKind.STREAM_TIMEOUT,
        FailureKind.CUT,
        FailureKind.PROTOCOL,
    }
)


class CallFailed(Exception):
    """One request to the agent service failed. ``message`` is safe to show an operator:
    it holds no header, no credential and at most ``MAX_MESSAGE_CHARS`` of what the
    service sent."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        """The HTTP status, when the service answered with one."""
        self.retry_after_s = retry_after_s
        """The wait the answer's ``Retry-After`` asked for, if it had a readable one."""
        self.retryable = retryable
        """For ``AGENT_ERROR``: the ``ERROR`` event's ``retryable``."""

    def __repr__(self) -> str:
        return f"CallFailed({self.kind.value}, {self.message!r}, status={self.status})"


def kind_for_status(status: int) -> FailureKind:
    """The kind of a non-2xx answer."""
    if status in (401, 403):
        return FailureKind.UNAUTHORIZED
    if status == 408:
        return FailureKind.SERVICE_TIMEOUT
    if status == 429 or status in (502, 503, 504):
        return FailureKind.UNAVAILABLE
    if 400 <= status < 500:
        return FailureKind.BAD_REQUEST
    return FailureKind.SERVER_ERROR  # 500, and any other status a service should not send


def retry_plan(
    kind: FailureKind,
    retryable: bool | None,
    attempt: int,
    server_errors_so_far: int,
    *,
    retries: int = len(BACKOFF_S),
) -> bool:
    """Whether the request numbered ``attempt`` (from 1) that failed with ``kind`` is tried
    again, when a call may make ``retries`` retries. ``server_errors_so_far`` counts the
    call's 500s, this one included: a 500 is retried once. ``retryable`` is the ``ERROR``
    event's flag (ignored for other kinds)."""
    if attempt > retries:
        return False
    if kind in ALWAYS_RETRIED:
        return True
    if kind is FailureKind.SERVER_ERROR:
        return server_errors_so_far <= 1
    if kind is FailureKind.AGENT_ERROR:
        return retryable is True
    return False


def backoff_s(attempt: int) -> float:
    """The wait after the failure of request ``attempt`` (from 1): 1, 2, 4, then 4 s."""
    return BACKOFF_S[min(max(attempt, 1), len(BACKOFF_S)) - 1]


def retry_delay_s(failed: CallFailed, attempt: int, now_ms: int, deadline_ms: int) -> float | None:
    """The wait before retrying after ``failed`` (request ``attempt``): the backoff, or the
    ``Retry-After`` of a 429 or 503 (at most ``MAX_RETRY_AFTER_S``); None when that wait
    would end at or after ``deadline_ms``."""
    delay = backoff_s(attempt)
    if failed.status in (429, 503) and failed.retry_after_s is not None:
        delay = min(failed.retry_after_s, MAX_RETRY_AFTER_S)
    if now_ms + round(delay * 1000) >= deadline_ms:
        return None
    return delay


def trips_breaker(failed: CallFailed) -> bool:
    """Whether the endpoint's circuit breaker counts ``failed`` as the endpoint's failure;
    any other failure (a 429, a 4xx, an ``ERROR`` event) shows the endpoint answering."""
    return failed.kind in ENDPOINT_FAILURES and failed.status != 429


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """The seconds a ``Retry-After`` header asks for: delta-seconds or an HTTP date (a past
    date asks for no wait); None when absent or unreadable."""
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
        return max(0.0, when.timestamp() - now_ms / 1000)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, 86_400.0)
