"""A circuit breaker per model endpoint, so a dead endpoint is not hammered (DESIGN §16).

Pure: each call gives the time in milliseconds. ``failures`` failures of the endpoint (5xx,
408, connection, timeout, cut stream: what ``Failure.trips_breaker`` says) within
``window_ms``, with no success between them, open the circuit for ``open_ms``: requests are
refused without being sent. Then it is half-open and lets exactly one request through, the
probe: its success closes the circuit, its failure opens it again for ``open_ms``, and a
probe that ends without an outcome (cancelled) passes its turn on (``record_abandoned``).
Any other answer of the endpoint (a 400, a 404, a 429) counts as a sign of life, not a
failure: a 429 is about one caller's quota, and its ``Retry-After`` governs that caller.

``BreakerBoard`` holds one breaker per endpoint (``endpoint_key``: scheme, host, port and
path of the base URL, never its credentials or query), shared by every agent and tenant of
the process that talks to it (``shared_board``); which is why only the endpoint's own
failures count, never a tenant's rate limit.
"""

import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures: int = 5
    window_ms: int = 60_000
    open_ms: int = 30_000


class CircuitBreaker:
    """One endpoint's breaker. ``allow`` before a request; ``record_success`` or
    ``record_failure`` after it (``record_abandoned`` when it was cancelled without an
    outcome). Each returns the new state when the call changed it, else None."""

    def __init__(self, settings: BreakerSettings = BreakerSettings()) -> None:
        self.settings = settings
        self._state = CircuitState.CLOSED
        self._failures: deque[int] = deque()
        self._opened_at = 0
        self._probe_out = False

    def state(self, now_ms: int) -> CircuitState:
        """The state a request at ``now_ms`` meets (an expired open reads as half-open)."""
        if self._state is CircuitState.OPEN and self._open_expired(now_ms):
            return CircuitState.HALF_OPEN
        return self._state

    def allow(self, now_ms: int) -> tuple[bool, CircuitState | None]:
        """Whether a request may be sent now, and the state change this caused."""
        changed: CircuitState | None = None
        if self._state is CircuitState.OPEN:
            if not self._open_expired(now_ms):
                return False, None
            self._state = CircuitState.HALF_OPEN
            self._probe_out = False
            changed = CircuitState.HALF_OPEN
        if self._state is CircuitState.HALF_OPEN:
            if self._probe_out:
                return False, changed
            self._probe_out = True
        return True, changed

    def record_success(self, now_ms: int) -> CircuitState | None:
        """The endpoint answered: a success, or an error that is not its failure (a 4xx,
        429 included)."""
        del now_ms  # a success closes whenever it comes
        self._failures.clear()
        self._probe_out = False
        if self._state is CircuitState.CLOSED:
            return None
        self._state = CircuitState.CLOSED
        return CircuitState.CLOSED

    def record_failure(self, now_ms: int) -> CircuitState | None:
        """A failure of the endpoint (``Failure.trips_breaker``) on a request this breaker
        let through."""
        if self._state is CircuitState.OPEN:
            return None  # sent before it opened: the open period stands
        if self._state is CircuitState.HALF_OPEN:
            return self._open(now_ms)
        self._failures.append(now_ms)
        while self._failures and self._failures[0] <= now_ms - self.settings.window_ms:
            self._failures.popleft()
        if len(self._failures) >= self.settings.failures:
            return self._open(now_ms)
        return None

    def record_abandoned(self) -> None:
        """The request ended without an outcome (cancelled): a probe's turn passes on."""
        if self._state is CircuitState.HALF_OPEN:
            self._probe_out = False

    def _open(self, now_ms: int) -> CircuitState:
        self._state = CircuitState.OPEN
        self._opened_at = now_ms
        self._failures.clear()
        self._probe_out = False
        return CircuitState.OPEN

    def _open_expired(self, now_ms: int) -> bool:
        return now_ms >= self._opened_at + self.settings.open_ms


def endpoint_key(base_url: str) -> str:
    """``scheme://host:port/path`` of ``base_url``: no user, password, query or fragment."""
    parts = urlsplit(base_url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


class BreakerBoard:
    """The breakers of a process, one per endpoint, all with the same settings. A breaker
    is shared by every tenant calling its endpoint: it sees only the endpoint's health (a
    tenant's 429 is not a failure of the endpoint)."""

    def __init__(self, settings: BreakerSettings = BreakerSettings()) -> None:
        self.settings = settings
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, endpoint: str) -> CircuitBreaker:
        """The breaker of ``endpoint`` (an ``endpoint_key``), made on first use."""
        with self._lock:
            found = self._breakers.get(endpoint)
            if found is None:
                found = self._breakers[endpoint] = CircuitBreaker(self.settings)
            return found

    def states(self, now_ms: int) -> dict[str, CircuitState]:
        """Every known endpoint's state (for metrics)."""
        with self._lock:
            return {key: b.state(now_ms) for key, b in sorted(self._breakers.items())}


_SHARED = BreakerBoard()


def shared_board() -> BreakerBoard:
    """The process-wide board: the default of every ``LlmClient``."""
    return _SHARED
