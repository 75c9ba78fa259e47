"""``/readyz`` and ``/metrics`` show the agent services the process knows (seed 004 Story 7
and 8): each endpoint's circuit and last health check, as checked over real HTTP against
the fake agent service; an agent service that is down never makes acf unready (acf falls
back), only the store does."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acf.pipelines.agent_service.availability import Availability, shared_availability
from acf.pipelines.agent_service.client import AgentServiceClient
from acf.pipelines.llm.breaker import endpoint_key
from acf.testing import FakeAgentService
from tests.http.conftest import Api

CHECK_EVERY_S = 1.0
WAIT_S = 10.0


@pytest.fixture
async def availability() -> AsyncIterator[Availability]:
    shared = shared_availability()
    try:
        yield shared
    finally:
        await shared.aclose()  # this test's health pollers stop


@pytest.fixture
async def agent_service() -> AsyncIterator[FakeAgentService]:
    async with FakeAgentService() as svc:
        yield svc


def entry_of(body: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    found = [s for s in body["agent_services"] if s["endpoint"] == endpoint]
    return found[0] if found else None


async def ready_until(
    client: httpx.AsyncClient, endpoint: str, met: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """``/readyz`` once the endpoint's entry meets ``met``; it must answer 200 throughout."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready"
        entry = entry_of(r.json(), endpoint)
        if entry is not None and met(entry):
            return entry
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz never showed it: {r.json()}")
        await asyncio.sleep(0.05)


async def gauges(client: httpx.AsyncClient, endpoint: str) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("acf_agent_service_") and s.labels == {"endpoint": endpoint}
    }


async def test_readiness_lists_agent_services_and_stays_ready_while_one_is_down(
    api: Api, agent_service: FakeAgentService, availability: Availability
) -> None:
    endpoint = endpoint_key(agent_service.base_url)
    agent_service.set_health("down")
    availability.watch(
        agent_service.base_url,
        lambda: AgentServiceClient(agent_service.base_url, None),
        clock=api.service.clock,
        interval_s=CHECK_EVERY_S,
    )
    async with api.client(None) as c:
        # /health answers 503 while down (a slow machine may first see a check time out)
        down = await ready_until(c, endpoint, lambda e: "503" in (e["error"] or ""))
        assert down["healthy"] is False and down["circuit"] == "closed"
        assert isinstance(down["checked_at_ms"], int)
        assert await gauges(c, endpoint) == {
            "acf_agent_service_up": 0,
            "acf_agent_service_circuit_state": 0,
        }

        agent_service.set_health("ok")
        back = await ready_until(c, endpoint, lambda e: e["healthy"] is True)
        assert back["error"] is None and back["checked_at_ms"] >= down["checked_at_ms"]
        assert (await gauges(c, endpoint))["acf_agent_service_up"] == 1

        # Five failures open the circuit: still ready (the router falls back), not up.
        breaker = availability.breaker(agent_service.base_url)
        for _ in range(5):
            breaker.record_failure(api.service.clock.now_ms())
        opened = await ready_until(c, endpoint, lambda e: e["circuit"] == "open")
        assert opened["healthy"] is True
        assert await gauges(c, endpoint) == {
            "acf_agent_service_up": 0,
            "acf_agent_service_circuit_state": 2,
        }


async def test_only_the_store_makes_readiness_fail_and_the_details_stay(
    api: Api, availability: Availability
) -> None:
    url = "http://127.0.0.1:1/agents"  # never called: its breaker alone makes it known
    availability.breaker(url)
    async with api.client(None) as c:
        ready = (await c.get("/readyz")).json()
        assert entry_of(ready, endpoint_key(url)) == {
            "endpoint": endpoint_key(url),
            "circuit": "closed",
            "healthy": None,
            "checked_at_ms": None,
            "error": None,
        }
        await api.service.store.close()
        r = await c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "unavailable"
    assert entry_of(r.json(), endpoint_key(url)) is not None
