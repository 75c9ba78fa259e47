"""The ``router`` pipeline end to end over real HTTP: the embedded runtime on the system
clock, a real SQLite file, a router whose routes are the ``llm`` pipeline (against
``FakeOpenAI``) and the ``agent_service`` pipeline (against ``FakeAgentService``), both on
loopback, with their production clients; the classifier asks the ``llm`` route's model. The
email channel does not accumulate, so each message is a turn at once."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.config.agent_service import AgentServicePipelineFields
from acf.config.pipelines import LlmPipelineFields, RouterPipelineFields
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.messages import NewMessage
from acf.domain.records import TurnRecord
from acf.domain.session_key import SessionKey
from acf.pipelines.agent_service.availability import Availability
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.routing.pipeline import RouterPipeline, Service
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import Pipeline
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_agent_steps import Ask
from acf.testing.fake_openai import FakeOpenAI
from acf.testing.fake_openai_script import Answer, HttpError

TENANT, AGENT = "t1", "a1"
NOTICE = "Our agent is resting; answering directly."
WAIT_ROUNDS = 400
"""Polls (50 ms apart) for a reply or a health check before a test gives up: a bound."""
HEALTH_S = 0.05


@dataclass
class Rig:
    llm: FakeOpenAI
    svc: FakeAgentService
    availability: Availability
    store: SqliteStore
    channel: RecordingChannel
    ingress: Ingress
    sent: int = 0

    def key(self, customer: str) -> SessionKey:
        return SessionKey(TENANT, AGENT, customer, Channel.EMAIL)

    async def say(self, text: str, customer: str = "alice") -> str:
        """Send ``text`` and wait for the reply it gets."""
        before = len(self.channel.replies_for(customer))
        self.sent += 1
        await self.ingress.accept(NewMessage(self.key(customer), f"m{self.sent}", text=text))
        for _ in range(WAIT_ROUNDS):
            replies = self.channel.replies_for(customer)
            if len(replies) > before:
                return "\n".join(replies[before:])
            await asyncio.sleep(0.05)
        raise AssertionError(f"no reply to {text!r}")

    async def decisions(self) -> list[dict[str, Any]]:
        events = await self.store.events.query(
            TENANT, EventQuery(kinds=(EventKind.TURN_PROGRESS,), limit=10_000)
        )
        return [strip(e) for e in events if e.data["name"] == "routing.decision"]

    async def records(self, customer: str = "alice") -> list[TurnRecord]:
        session = await self.store.sessions.find_open(TENANT, self.key(customer))
        assert session is not None
        turns = await self.store.turns.list_turns(TENANT, session.session_id)
        found = [await self.store.turns.get_record(TENANT, t.turn_id) for t in turns]
        return [r for r in found if r is not None]

    async def health_is(self, usable: bool) -> None:
        for _ in range(WAIT_ROUNDS):
            if self.availability.usable(self.svc.base_url, SystemClock().now_ms()) is usable:
                return
            await asyncio.sleep(HEALTH_S)
        raise AssertionError(f"the agent service never became usable={usable}")


def strip(event: FabricEvent) -> dict[str, Any]:
    """A decision's data without its timing (which varies)."""
    data = {k: v for k, v in event.data.items() if k not in ("name", "decision_us", "agent")}
    assert isinstance(event.data["decision_us"], int) and event.data["decision_us"] >= 0
    assert event.data["agent"] == "a1"  # every progress event names its agent (metrics)
    return data


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    changes: dict[str, Any] = getattr(request, "param", {})
    clock = SystemClock()
    availability = Availability()
    async with FakeOpenAI() as llm, FakeAgentService() as svc:
        llm_fields = LlmPipelineFields(kind="llm", model="m1", base_url=llm.base_url)
        agent_fields = AgentServicePipelineFields(
            kind="agent_service", base_url=svc.base_url, profile="support"
        )
        routing = RouterPipelineFields.model_validate(
            {
                "kind": "router",
                "routes": {
                    "direct": llm_fields.model_dump(),
                    "agent": agent_fields.model_dump(),
                },
                "default": "direct",
                "fallback": "direct",
                "rules": [
                    {"route": "agent", "commands": ["/agent", "@agent"]},
                    {"route": "direct", "commands": ["/direct"]},
                ],
                "degraded_notice": NOTICE,
                **changes,
            }
        )
        children: dict[str, Pipeline] = {
            "direct": LlmPipeline(llm_fields, PromptSource("Help."), [], LazyClient(llm_fields)),
            "agent": AgentServicePipeline(
                agent_fields, availability=availability, health_interval_s=HEALTH_S
            ),
        }
        pipeline = RouterPipeline(
            routing, children, {"agent": Service(svc.base_url, "support")}, availability
        )
        settings = AgentSettings(retry_backoff_ms=10, history_limit=200)
        agents = Agents({TENANT: {AGENT: AgentBinding(pipeline, settings, ToolRegistry())}})
        store = await open_sqlite_store(tmp_path / "acf.db", clock)
        wakeups = InProcessWakeUps()
        channel = RecordingChannel(clock)
        runtime = Runtime(store, clock, agents, wakeups, channel)
        await runtime.start()
        try:
            yield Rig(
                llm, svc, availability, store, channel, Ingress(agents, store.uow, wakeups, clock)
            )
        finally:
            await runtime.stop()
            await store.close()
            await pipeline.aclose()
            await availability.aclose()


async def test_a_command_goes_to_the_agent_without_it_and_plain_text_to_the_default(
    rig: Rig,
) -> None:
    rig.llm.script(Answer("Hello from the model."))
    assert await rig.say("hello", customer="bob") == "Hello from the model."
    assert rig.llm.completions[0].messages[-1] == {"role": "user", "content": "hello"}
    assert await rig.say("/Agent  where is my parcel?") == "You said: where is my parcel?"
    (request,) = rig.svc.requests
    assert request.body.message.text == "where is my parcel?"
    assert await rig.decisions() == [
        {"route": "direct", "reason": "default"},
        {"route": "agent", "reason": "command", "rule": 0},
    ]
    (record,) = await rig.records()
    assert (record.details["route"], record.details["routing_reason"]) == ("agent", "command")


async def test_an_agent_session_keeps_its_route_until_a_command_leaves_it(rig: Rig) -> None:
    rig.llm.script(Answer("Direct again."))
    assert await rig.say("@agent track P1") == "You said: track P1"
    assert await rig.say("and the other one?") == "You said: and the other one?"
    first, second = rig.svc.requests
    assert first.body.agent_session_id is None
    assert second.body.agent_session_id == "as-1"  # the same agent session goes on
    assert await rig.say("/direct thanks") == "Direct again."
    assert rig.llm.completions[0].messages[-1] == {"role": "user", "content": "thanks"}
    reasons = [(d["route"], d["reason"]) for d in await rig.decisions()]
    assert reasons == [("agent", "command"), ("agent", "sticky"), ("direct", "command")]


@pytest.mark.parametrize("rig", [{"sticky_s": 0}], indirect=True)
async def test_a_waiting_agent_session_sticks_and_a_completed_one_not_with_sticky_s_zero(
    rig: Rig,
) -> None:
    rig.llm.script(Answer("From the model."))
    rig.svc.enqueue([Ask("Which order?", ask_id="ask-1")])
    assert await rig.say("/agent where is my order?") == "Which order?"
    assert await rig.say("the blue one") == "You said: the blue one"  # the answer
    answer = rig.svc.requests[1].body.answer
    assert answer is not None and (answer.ask_id, answer.text) == ("ask-1", "the blue one")
    assert await rig.say("more") == "From the model."
    reasons = [d["reason"] for d in await rig.decisions()]
    assert reasons == ["command", "sticky", "default"]


async def test_an_unusable_service_falls_back_with_the_notice_once_per_outage(
    rig: Rig,
) -> None:
    rig.llm.script(Answer("Direct one."), Answer("Direct two."), Answer("Direct three."))
    assert await rig.say("/agent first") == "You said: first"  # starts the health checks
    rig.svc.set_health("down")
    await rig.health_is(False)
    assert await rig.say("/agent hi") == f"{NOTICE}\n\nDirect one."
    assert rig.llm.completions[0].messages[-1] == {"role": "user", "content": "hi"}
    assert await rig.say("/agent again") == "Direct two."  # the same outage: no notice
    rig.svc.set_health("ok")
    await rig.health_is(True)
    assert await rig.say("/agent back") == "You said: back"
    rig.svc.set_health("down")
    await rig.health_is(False)
    assert await rig.say("/agent down again") == f"{NOTICE}\n\nDirect three."
    assert len(rig.svc.requests) == 2
    decisions = await rig.decisions()
    assert decisions[1] == {
        "route": "direct",
        "reason": "fallback",
        "rule": 0,
        "fallback_from": "agent",
    }
    routes = [(d["route"], d["reason"]) for d in decisions]
    assert routes == [
        ("agent", "command"),
        ("direct", "fallback"),
        ("direct", "fallback"),
        ("agent", "command"),
        ("direct", "fallback"),
    ]
    records = await rig.records()
    assert [r.details["routing_reason"] for r in records][-1] == "fallback"


async def test_a_request_the_circuit_refuses_after_the_decision_goes_to_the_fallback(
    rig: Rig,
) -> None:
    """Half-open: the endpoint reads as usable, but its one probe is another turn's, so the
    agent's request is refused without being sent: the fallback answers, with the notice."""
    rig.llm.script(Answer("Direct."))
    breaker = rig.availability.breaker(rig.svc.base_url)
    opened = SystemClock().now_ms() - 40_000  # open 30 s by default: half-open now
    for _ in range(5):
        breaker.record_failure(opened)
    assert breaker.allow(opened + 40_000)[0]  # another turn's probe
    assert await rig.say("/agent hi") == f"{NOTICE}\n\nDirect."
    assert rig.svc.requests == []
    routes = [(d["route"], d["reason"], d.get("fallback_from")) for d in await rig.decisions()]
    assert routes == [("agent", "command", None), ("direct", "fallback", "agent")]
    (record,) = await rig.records()
    assert record.details["routing_reason"] == "fallback"
    session = await rig.store.sessions.find_open(TENANT, rig.key("alice"))
    assert session is not None
    (row,) = await rig.store.agent_sessions.list_for(TENANT, session.session_id)
    assert not row.status.is_open and not row.execution_open  # not left sticky: nothing ran


@pytest.mark.parametrize("rig", [{"enabled": False}], indirect=True)
async def test_a_disabled_router_sends_everything_to_the_default(rig: Rig) -> None:
    rig.llm.script(Answer("Only the model here."))
    assert await rig.say("/agent hi") == "Only the model here."
    assert rig.llm.completions[0].messages[-1] == {"role": "user", "content": "/agent hi"}
    assert not rig.svc.requests
    assert await rig.decisions() == [{"route": "direct", "reason": "disabled"}]


SPREADSHEETS = "needs a spreadsheet, a file or data analysed"
CLASSIFYING = {
    "rules": [
        {"route": "agent", "commands": ["/agent"]},
        {"route": "agent", "classify": SPREADSHEETS},
    ],
    # past it the classifier gives up; short, so a failing model is not retried
    "classifier_timeout_s": 0.5,
}


@pytest.mark.parametrize("rig", [CLASSIFYING], indirect=True)
async def test_the_classifier_sends_what_it_describes_to_its_route(rig: Rig) -> None:
    rig.llm.script(Answer("agent"))
    text = "can you analyze this spreadsheet"
    assert await rig.say(text) == f"You said: {text}"
    (asked,) = rig.llm.completions  # the classifier's request, to the direct route's model
    system, user = asked.messages
    assert f"- agent: {SPREADSHEETS}\n" in system["content"] and "- none: " in system["content"]
    assert user == {"role": "user", "content": text}
    assert (asked.model, asked.body["temperature"], asked.body["max_tokens"]) == ("m1", 0, 32)
    (request,) = rig.svc.requests
    assert request.body.message.text == text
    assert await rig.decisions() == [{"route": "agent", "reason": "classifier", "rule": 1}]
    (record,) = await rig.records()
    assert record.details["routing_reason"] == "classifier"
    events = await rig.store.events.query(
        TENANT, EventQuery(kinds=(EventKind.TURN_PROGRESS,), limit=10_000)
    )
    (usage,) = [e.data for e in events if e.data["name"] == "llm.completion"]
    assert (usage["purpose"], usage["model"], usage["agent"]) == ("classify", "m1", AGENT)


@pytest.mark.parametrize("rig", [CLASSIFYING], indirect=True)
async def test_a_classifier_answering_none_leaves_the_turn_to_the_default(rig: Rig) -> None:
    rig.llm.script(Answer(" None\n"), Answer("Directly."))
    assert await rig.say("what are your opening hours?") == "Directly."
    assert rig.llm.completions_requested == 2  # the classifier, then the direct route
    assert rig.llm.completions[1].messages[-1] == {
        "role": "user",
        "content": "what are your opening hours?",
    }
    assert not rig.svc.requests
    assert await rig.decisions() == [{"route": "direct", "reason": "default"}]


@pytest.mark.parametrize("rig", [CLASSIFYING], indirect=True)
async def test_a_failing_classifier_leaves_the_turn_to_the_default_and_says_why(
    rig: Rig,
) -> None:
    rig.llm.script(HttpError(500), Answer("Directly."))
    assert await rig.say("please analyze my data") == "Directly."
    assert [r.status for r in rig.llm.completions] == [500, 200]  # not retried past 0.5 s
    assert not rig.svc.requests
    assert await rig.decisions() == [
        {"route": "direct", "reason": "default", "classifier_error": "LlmUnavailable"}
    ]


@pytest.mark.parametrize("rig", [CLASSIFYING], indirect=True)
async def test_a_command_or_an_open_agent_session_asks_no_classifier(rig: Rig) -> None:
    assert await rig.say("/agent analyze this file") == "You said: analyze this file"
    assert await rig.say("and that data too") == "You said: and that data too"  # sticky
    assert rig.llm.completions_requested == 0
    reasons = [(d["route"], d["reason"]) for d in await rig.decisions()]
    assert reasons == [("agent", "command"), ("agent", "sticky")]
