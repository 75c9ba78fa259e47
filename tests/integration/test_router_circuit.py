"""The circuit of an agent service, end to end through a router (seed 004 Stories 4 and 7):
the service goes down, its failures open the circuit, the router answers with the direct
LLM while it is open, the service comes back, and the half-open probe (a real turn) closes
the circuit so the agent answers again. Real runtime on the system clock, real SQLite,
``FakeAgentService`` and ``FakeOpenAI`` on loopback; the breaker opens for ``OPEN_S`` here
so the test does not wait 30."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import open_sqlite_store
from acf.config.agent_service import AgentServicePipelineFields
from acf.config.pipelines import LlmPipelineFields, RouterPipelineFields
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.pipelines.agent_service.availability import Availability
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.breaker import CircuitState
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.routing.pipeline import RouterPipeline, Service
from acf.ports.agent_binding import AgentBinding
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_openai import FakeOpenAI
from acf.testing.fake_openai_script import Answer

TENANT, AGENT, CUSTOMER = "t1", "a1", "alice"
NOTICE = "Answering directly for now."
UNAVAILABLE = "The assistant is down."
OPEN_S = 3
"""Long enough for the fallback turn to run while the circuit is open (it takes ms)."""


class Chat:
    def __init__(self, ingress: Ingress, channel: RecordingChannel) -> None:
        self.ingress, self.channel, self.sent = ingress, channel, 0

    async def say(self, text: str) -> str:
        before = len(self.channel.replies_for(CUSTOMER))
        self.sent += 1
        key = SessionKey(TENANT, AGENT, CUSTOMER, Channel.EMAIL)
        await self.ingress.accept(NewMessage(key, f"m{self.sent}", text=text))
        for _ in range(400):
            replies = self.channel.replies_for(CUSTOMER)
            if len(replies) > before:
                return "\n".join(replies[before:])
            await asyncio.sleep(0.05)
        raise AssertionError(f"no reply to {text!r}")


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[Chat, FakeOpenAI, FakeAgentService, Availability, Runtime]]:
    clock = SystemClock()
    availability = Availability()
    async with FakeOpenAI() as llm, FakeAgentService() as svc:
        llm_fields = LlmPipelineFields(kind="llm", model="m1", base_url=llm.base_url)
        agent_fields = AgentServicePipelineFields.model_validate(
            {
                "kind": "agent_service",
                "base_url": svc.base_url,
                "profile": "support",
                "retries": 0,
                "breaker": {"failures": 5, "window_s": 60, "open_s": OPEN_S},
                "texts": {"unavailable": UNAVAILABLE},
            }
        )
        routing = RouterPipelineFields.model_validate(
            {
                "kind": "router",
                "routes": {"direct": llm_fields.model_dump(), "agent": agent_fields.model_dump()},
                "default": "direct",
                "fallback": "direct",
                "rules": [{"route": "agent", "commands": ["/agent"]}],
                "degraded_notice": NOTICE,
            }
        )
        children = {
            "direct": LlmPipeline(llm_fields, PromptSource("Help."), [], LazyClient(llm_fields)),
            "agent": AgentServicePipeline(agent_fields, availability=availability),
        }
        router = RouterPipeline(
            routing, children, {"agent": Service(svc.base_url, "support")}, availability
        )
        agents = Agents({TENANT: {AGENT: AgentBinding(router, AgentSettings(), ToolRegistry())}})
        store = await open_sqlite_store(tmp_path / "acf.db", clock)
        wakeups, channel = InProcessWakeUps(), RecordingChannel(clock)
        runtime = Runtime(store, clock, agents, wakeups, channel)
        await runtime.start()
        try:
            chat = Chat(Ingress(agents, store.uow, wakeups, clock), channel)
            yield chat, llm, svc, availability, runtime
        finally:
            await runtime.stop()
            await router.aclose()
            await availability.aclose()
            await store.close()


async def test_down_opens_the_circuit_the_llm_answers_and_the_probe_closes_it(
    world: tuple[Chat, FakeOpenAI, FakeAgentService, Availability, Runtime],
) -> None:
    chat, llm, svc, availability, _runtime = world
    llm.script(Answer("Direct one."))
    assert await chat.say("/agent hello") == "You said: hello"
    breaker = availability.breaker(svc.base_url)

    svc.set_down(True)
    for n in range(5):  # each turn: one request, a 503, the tenant's text
        assert await chat.say(f"/agent try {n}") == UNAVAILABLE
    assert breaker.state(SystemClock().now_ms()) is CircuitState.OPEN
    sent = len(svc.requests)

    assert await chat.say("/agent still there?") == f"{NOTICE}\n\nDirect one."
    assert len(svc.requests) == sent  # the open circuit sent nothing

    svc.set_down(False)
    for _ in range(200):  # the circuit's open time passes: half-open, one probe
        if breaker.state(SystemClock().now_ms()) is CircuitState.HALF_OPEN:
            break
        await asyncio.sleep(0.05)
    assert await chat.say("/agent back?") == "You said: back?"
    assert breaker.state(SystemClock().now_ms()) is CircuitState.CLOSED
    assert len(svc.requests) == sent + 1
