"""Whether an agent service can be used now, per endpoint (seed 004 Story 7): its circuit
breaker and its health checks, for the router's fallback and ``/readyz``.

One ``Availability`` per process (``shared_availability``) holds, per endpoint (the base
URL's ``endpoint_key``: scheme, host, port and path, never a credential), one
``CircuitBreaker`` shared by every agent and tenant calling it, and the outcome of the
last ``GET /health``. ``watch`` starts polling an endpoint's health (once per endpoint,
on the running event loop); ``aclose`` stops every poller. An endpoint is ``usable`` while
its circuit is not open and its last health check did not fail (an endpoint never
checked counts as healthy).
"""

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from acf.pipelines.agent_service.client import AgentServiceClient
from acf.pipelines.agent_service.failures import CallFailed
from acf.pipelines.llm.breaker import BreakerSettings, CircuitBreaker, CircuitState, endpoint_key
from acf.ports.clock import Clock

HEALTH_INTERVAL_S = 15.0
DEFAULT_BREAKER = BreakerSettings()

log = structlog.get_logger("acf.agent_service")

ClientFactory = Callable[[], AgentServiceClient]
"""Makes the client a poller uses (and closes when it stops)."""


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint, as ``/readyz`` shows it."""

    endpoint: str
    circuit: CircuitState
    healthy: bool | None
    """The last health check's verdict; None before the first one."""
    checked_at_ms: int | None
    error: str | None
    """Why the last check failed (safe to show)."""


@dataclass(frozen=True, slots=True)
class _Check:
    healthy: bool
    at_ms: int
    error: str | None


class Availability:
    """The breakers and health checks of a process's agent service endpoints."""

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}
        self._checks: dict[str, _Check] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._lock = threading.Lock()

    def breaker(self, base_url: str, settings: BreakerSettings = DEFAULT_BREAKER) -> CircuitBreaker:
        """The breaker of ``base_url``'s endpoint, made on first use with ``settings`` (the
        first caller's settings stand for every later one)."""
        endpoint = endpoint_key(base_url)
        with self._lock:
            found = self._breakers.get(endpoint)
            if found is None:
                found = self._breakers[endpoint] = CircuitBreaker(settings)
            return found

    def usable(self, base_url: str, now_ms: int) -> bool:
        """Whether a request to ``base_url`` may be tried at ``now_ms``: its circuit is not
        open (half-open lets the probe through) and its last health check did not fail."""
        endpoint = endpoint_key(base_url)
        with self._lock:
            breaker = self._breakers.get(endpoint)
            check = self._checks.get(endpoint)
        if breaker is not None and breaker.state(now_ms) is CircuitState.OPEN:
            return False
        return check is None or check.healthy

    def watch(
        self,
        base_url: str,
        client_factory: ClientFactory,
        *,
        clock: Clock,
        interval_s: float = HEALTH_INTERVAL_S,
    ) -> None:
        """Poll ``base_url``'s ``GET /health`` now and every ``interval_s`` on ``clock``,
        on the running loop, unless a poller of that endpoint runs on it already. A check
        not answered within ``interval_s`` (real time) fails."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        endpoint = endpoint_key(base_url)
        loop = asyncio.get_running_loop()
        with self._lock:
            running = self._pollers.get(endpoint)
            if running is not None and not running.done() and running.get_loop() is loop:
                return
            poll = self._poll(endpoint, client_factory, clock, interval_s)
            self._pollers[endpoint] = loop.create_task(poll, name=f"agent-health {endpoint}")

    def snapshot(self, now_ms: int) -> list[EndpointHealth]:
        """Every known endpoint (with a breaker or a health check), by endpoint."""
        with self._lock:
            breakers = dict(self._breakers)
            checks = dict(self._checks)
        found: list[EndpointHealth] = []
        for endpoint in sorted(breakers.keys() | checks.keys()):
            breaker = breakers.get(endpoint)
            circuit = CircuitState.CLOSED if breaker is None else breaker.state(now_ms)
            check = checks.get(endpoint)
            found.append(
                EndpointHealth(
                    endpoint=endpoint,
                    circuit=circuit,
                    healthy=None if check is None else check.healthy,
                    checked_at_ms=None if check is None else check.at_ms,
                    error=None if check is None else check.error,
                )
            )
        return found

    async def unwatch(self, base_url: str) -> None:
        """Stop the poller of ``base_url``'s endpoint (awaited when it runs on this loop);
        its last health check stays until the next ``watch`` replaces it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            task = self._pollers.pop(endpoint_key(base_url), None)
        if task is not None and task.get_loop() is loop:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop every poller (those of the running loop are awaited) and forget the health
        checks; the breakers stay."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pollers = list(self._pollers.values())
            self._pollers.clear()
            self._checks.clear()
        mine = [task for task in pollers if task.get_loop() is loop]
        for task in mine:
            task.cancel()
        await asyncio.gather(*mine, return_exceptions=True)

    async def _poll(
        self, endpoint: str, client_factory: ClientFactory, clock: Clock, interval_s: float
    ) -> None:
        client = client_factory()
        try:
            while True:
                check = await self._check(client, clock, interval_s)
                with self._lock:
                    before = self._checks.get(endpoint)
                    self._checks[endpoint] = check
                if before is None or before.healthy != check.healthy:
                    log.info(
                        "agent_service.health",
                        endpoint=endpoint,
                        healthy=check.healthy,
                        error=check.error,
                    )
                await clock.sleep(interval_s)
        finally:
            await client.aclose()

    async def _check(self, client: AgentServiceClient, clock: Clock, interval_s: float) -> _Check:
        """One health check: healthy unless the service answers ``down`` or a failure."""
        error: str | None
        try:
            async with asyncio.timeout(interval_s):
                body = await client.health()
        except TimeoutError:
            error = f"no answer within {interval_s:g} s"
        except CallFailed as failed:
            error = failed.message
        except Exception as exc:  # a poller outlives whatever one check ran into
            error = f"the check failed ({type(exc).__name__})"
        else:
            error = None if body.status != "down" else "the service reports down"
        return _Check(error is None, clock.now_ms(), error)


_SHARED = Availability()


def shared_availability() -> Availability:
    """The process-wide registry: every agent service pipeline and ``/readyz`` use it."""
    return _SHARED
