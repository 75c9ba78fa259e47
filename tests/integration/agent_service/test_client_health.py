"""``Availability`` polling an agent service's ``GET /health`` over real HTTP, on a virtual
clock: one poller per endpoint, a failing check makes the endpoint unusable until a check
passes again, a check that does not answer in time fails, ``snapshot`` reports it, and
``aclose`` stops every poller."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from acf.pipelines.agent_service.availability import Availability, EndpointHealth
from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts
from acf.pipelines.llm.breaker import CircuitState, endpoint_key
from acf.testing import VirtualClock
from tests.integration.agent_service.raw_service import RawService

KEY = "agent-key-61b0c3d9e2f4"
TIMEOUTS = ClientTimeouts(connect_s=2.0, first_event_s=5.0, stream_s=10.0)


class Health:
    """What the service's ``/health`` answers."""

    def __init__(self) -> None:
        self.status = "ok"
        self.stall = False

    async def answer(self, request: web.Request, _n: int) -> web.StreamResponse:
        if self.stall:
            await asyncio.sleep(30)
        code = 503 if self.status == "down" else 200
        return web.json_response({"status": self.status}, status=code)


@pytest.fixture
async def health() -> AsyncIterator[tuple[Health, RawService]]:
    said = Health()
    async with RawService(said.answer) as raw:
        yield said, raw


async def checked(clock: VirtualClock) -> None:
    """Wait until the poller has checked and sleeps again on ``clock``."""
    async with asyncio.timeout(5):
        while clock.next_due_ms() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def next_check(clock: VirtualClock, interval_ms: int = 15_000) -> None:
    clock.advance(interval_ms)
    await checked(clock)


async def test_health_checks_decide_whether_the_endpoint_is_usable(
    health: tuple[Health, RawService],
) -> None:
    said, raw = health
    clock, availability = VirtualClock(), Availability()
    endpoint = endpoint_key(raw.base_url)
    made: list[AgentServiceClient] = []

    def factory() -> AgentServiceClient:
        made.append(AgentServiceClient(raw.base_url, KEY, TIMEOUTS))
        return made[-1]

    try:
        availability.watch(raw.base_url, factory, clock=clock)
        availability.watch(raw.base_url + "/", factory, clock=clock)  # the same endpoint
        await checked(clock)
        assert len(made) == 1 and len(raw.requests) == 1
        assert raw.requests[0].path == "/health"
        assert raw.requests[0].headers["x-api-key"] == KEY
        at = clock.now_ms()
        assert availability.snapshot(at) == [
            EndpointHealth(endpoint, CircuitState.CLOSED, True, at, None)
        ]
        assert availability.usable(raw.base_url, at)

        said.status = "down"
        await next_check(clock)
        at = clock.now_ms()
        assert availability.snapshot(at) == [
            EndpointHealth(endpoint, CircuitState.CLOSED, False, at, "HTTP 503")
        ]
        assert not availability.usable(raw.base_url, at)

        said.status = "degraded"  # still serving
        await next_check(clock)
        assert availability.usable(raw.base_url, clock.now_ms())
        assert len(raw.requests) == 3  # one poller only
    finally:
        await availability.aclose()
    clock.advance(60_000)
    await asyncio.sleep(0.05)
    assert len(raw.requests) == 3  # stopped
    assert clock.next_due_ms() is None
    assert availability.snapshot(clock.now_ms()) == []  # no breaker made, checks forgotten
    assert made[0].closed


async def test_a_check_not_answered_within_the_interval_fails(
    health: tuple[Health, RawService],
) -> None:
    said, raw = health
    said.stall = True
    clock, availability = VirtualClock(), Availability()
    try:
        availability.watch(
            raw.base_url,
            lambda: AgentServiceClient(raw.base_url, None, TIMEOUTS),
            clock=clock,
            interval_s=0.3,
        )
        await checked(clock)
        (found,) = availability.snapshot(clock.now_ms())
        assert (found.healthy, found.error) == (False, "no answer within 0.3 s")
        assert not availability.usable(raw.base_url, clock.now_ms())
    finally:
        await availability.aclose()


async def test_an_unreachable_service_is_unhealthy_and_a_bad_interval_is_refused() -> None:
    clock, availability = VirtualClock(), Availability()
    url = "http://127.0.0.1:9"  # discard: nothing listens
    with pytest.raises(ValueError, match="interval_s must be positive"):
        availability.watch(
            url, lambda: AgentServiceClient(url, None, TIMEOUTS), clock=clock, interval_s=0
        )
    try:
        availability.watch(url, lambda: AgentServiceClient(url, None, TIMEOUTS), clock=clock)
        await checked(clock)
        (found,) = availability.snapshot(clock.now_ms())
        assert found.healthy is False
        assert found.error == "connection to http://127.0.0.1:9 failed (ConnectError)"
    finally:
        await availability.aclose()


async def test_unwatch_stops_one_endpoint_and_a_later_watch_starts_it_again(
    health: tuple[Health, RawService],
) -> None:
    _said, raw = health
    clock, availability = VirtualClock(), Availability()
    made: list[AgentServiceClient] = []

    def factory() -> AgentServiceClient:
        made.append(AgentServiceClient(raw.base_url, KEY, TIMEOUTS))
        return made[-1]

    try:
        availability.watch(raw.base_url, factory, clock=clock)
        await checked(clock)
        await availability.unwatch(raw.base_url)
        assert made[0].closed and clock.next_due_ms() is None
        clock.advance(60_000)
        await asyncio.sleep(0.05)
        assert len(raw.requests) == 1  # stopped
        assert availability.usable(raw.base_url, clock.now_ms())  # the last check stays
        availability.watch(raw.base_url, factory, clock=clock)
        await checked(clock)
        assert len(made) == 2 and len(raw.requests) == 2
    finally:
        await availability.aclose()
