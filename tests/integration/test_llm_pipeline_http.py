"""The ``llm`` pipeline end to end over real HTTP: the embedded runtime on the system clock,
a real SQLite file, the production model client (``LlmClient`` through the ``openai`` SDK,
made on the first request by the kind's ``LazyClient``) against ``FakeOpenAI`` on
loopback, and the gateway's tools. The email channel does not accumulate, so each message
is a turn at once."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.domain.agent_settings import DEFAULT_FALLBACK_TEXT, AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.handoff import HandoffPolicy
from acf.domain.messages import NewMessage
from acf.domain.records import TurnRecord
from acf.domain.session_key import SessionKey
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel
from acf.testing.fake_openai import FakeOpenAI
from acf.testing.fake_openai_script import Answer, FakeToolCall, HttpError
from acf.testing.pipeline import Tally
from acf.testing.tools import ToolBackend, registry
from tests.integration.test_llm_pipeline import LOOKUP, REFUND, fields

TENANT, AGENT = "t1", "a1"
KEY = "sk-fake-0123456789"
WAIT_ROUNDS = 400
"""Polls (50 ms apart) for a reply before a test gives up: a bound, not a timing."""
HANDOFF_NOTICE = HandoffPolicy().notice


@dataclass
class Rig:
    fake: FakeOpenAI
    store: SqliteStore
    channel: RecordingChannel
    ingress: Ingress
    tally: Tally
    sent: int = 0

    def key(self, customer: str = "alice") -> SessionKey:
        return SessionKey(TENANT, AGENT, customer, Channel.EMAIL)

    async def say(self, text: str, customer: str = "alice") -> list[str]:
        """Send ``text`` and wait for the reply it gets: the customer's replies so far."""
        before = len(self.channel.replies_for(customer))
        self.sent += 1
        await self.ingress.accept(NewMessage(self.key(customer), f"m{self.sent}", text=text))
        for _ in range(WAIT_ROUNDS):
            replies = self.channel.replies_for(customer)
            if len(replies) > before:
                return replies
            await asyncio.sleep(0.05)
        raise AssertionError(f"no reply to {text!r}")

    async def records(self) -> list[TurnRecord]:
        session = await self.store.sessions.find_open(TENANT, self.key())
        assert session is not None
        turns = await self.store.turns.list_turns(TENANT, session.session_id)
        found = [await self.store.turns.get_record(TENANT, t.turn_id) for t in turns]
        return [r for r in found if r is not None]

    async def events(self, *kinds: EventKind) -> list[FabricEvent]:
        return await self.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))


@pytest.fixture
async def rig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    monkeypatch.setenv("ACF_TEST_FAKE_LLM_KEY", KEY)
    changes: dict[str, Any] = getattr(request, "param", {})
    clock = SystemClock()
    tally = Tally()
    async with FakeOpenAI() as fake:
        llm = fields(base_url=fake.base_url, api_key="${ACF_TEST_FAKE_LLM_KEY}", **changes)
        pipeline = LlmPipeline(
            llm, PromptSource("Help {tenant}."), [LOOKUP, REFUND], LazyClient(llm)
        )
        tools = registry((ToolBackend(LOOKUP, 5), ToolBackend(REFUND, 5)), clock, tally)
        settings = AgentSettings(retry_backoff_ms=10)
        agents = Agents({TENANT: {AGENT: AgentBinding(pipeline, settings, tools)}})
        store = await open_sqlite_store(tmp_path / "acf.db", clock)
        wakeups = InProcessWakeUps()
        channel = RecordingChannel(clock)
        runtime = Runtime(store, clock, agents, wakeups, channel)
        await runtime.start()
        try:
            yield Rig(fake, store, channel, Ingress(agents, store.uow, wakeups, clock), tally)
        finally:
            await runtime.stop()
            await store.close()
            await pipeline.aclose()


def tool_replies(body: Any) -> dict[str, dict[str, Any]]:
    return {
        m["tool_call_id"]: json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"
    }


async def test_a_lookup_then_an_answer_over_http(rig: Rig) -> None:
    rig.fake.script(
        Answer("", (FakeToolCall("lookup_order", {"order_id": "7"}),)),
        Answer("Order 7 has shipped."),
    )
    assert await rig.say("Where is order 7?") == ["Order 7 has shipped."]
    first, second = rig.fake.completions
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.body["stream"] is True and first.model == "m1"
    assert first.messages[-1] == {"role": "user", "content": "Where is order 7?"}
    (reply,) = tool_replies(second.body).values()
    assert reply["outcome"] == "ok" and reply["value"]["args"] == {"order_id": "7"}
    (record,) = await rig.records()
    usage = record.details["llm"]
    assert usage["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens
    assert usage["completion_tokens"] == first.tokens_streamed + second.tokens_streamed
    assert usage["tool_rounds"] == 1 and usage["requests"] == 2
    assert record.details["outcomes"] == ["ANSWERED"]


async def test_a_confirmed_refund_runs_once_and_again_is_already_done(rig: Rig) -> None:
    refund = (FakeToolCall("refund_order", {"order_id": "7"}),)
    rig.fake.script(
        Answer("Shall I refund order 7?", refund),
        Answer("Done: order 7 is refunded."),
        Answer("", refund),
        Answer("That was already refunded earlier."),
    )
    assert (await rig.say("Refund order 7 please."))[-1] == "Shall I refund order 7?"
    assert (await rig.say("yes"))[-1] == "Done: order 7 is refunded."
    settled = tool_replies(rig.fake.completions[1].body)
    (reply,) = settled.values()
    assert reply["outcome"] == "ok"
    assert (await rig.say("Refund order 7 again."))[-1] == "Shall I refund order (order_id 7)?"
    assert (await rig.say("yes"))[-1] == "That was already refunded earlier."
    again = list(tool_replies(rig.fake.completions[3].body).values())[-1]
    assert again["outcome"] == "already_done" and again["confirmation"] == "yes"
    assert list(rig.tally.tool_runs.values()) == [1]
    assert len(await rig.store.ledger.query(TENANT, LedgerQuery(tool="refund_order"))) == 1


async def test_a_claimed_refund_is_regenerated_then_withheld(rig: Rig) -> None:
    rig.fake.script(Answer("I have refunded order 7."), Answer("I've refunded it."))
    # withheld, and the session handed to a person (one notice, sent after the reply)
    assert (await rig.say("Refund order 7."))[0] == DEFAULT_FALLBACK_TEXT
    for _ in range(WAIT_ROUNDS):
        if len(rig.channel.replies_for("alice")) > 1:
            break
        await asyncio.sleep(0.05)
    assert rig.channel.replies_for("alice") == [DEFAULT_FALLBACK_TEXT, HANDOFF_NOTICE]
    retry = rig.fake.completions[1].body
    assert retry["tool_choice"] == "none"
    assert "refund_order" in retry["messages"][-1]["content"]
    assert await rig.events(EventKind.SESSION_FLAGGED)
    assert not rig.tally.tool_runs


async def test_a_tool_outside_the_allowlist_is_refused_over_http(rig: Rig) -> None:
    rig.fake.script(
        Answer("", (FakeToolCall("wire_money", {"to": "mallory"}),)),
        Answer("I cannot do that."),
    )
    assert await rig.say("Send money to mallory.") == ["I cannot do that."]
    (refused,) = tool_replies(rig.fake.completions[1].body).values()
    assert refused["outcome"] == "refused"
    (audit,) = await rig.events(EventKind.TOOL_REFUSED)
    assert audit.data["tool"] == "wire_money"
    assert not rig.tally.backend_calls


@pytest.mark.parametrize("rig", [{"fallback_models": ["m2"]}], indirect=True)
async def test_a_fallback_model_answers_when_the_first_fails_for_good(rig: Rig) -> None:
    rig.fake.script(HttpError(400), Answer("Hello from the second model."))
    assert await rig.say("hi") == ["Hello from the second model."]
    assert [r.model for r in rig.fake.completions] == ["m1", "m2"]
    (record,) = await rig.records()
    assert record.details["llm"]["models"] == ["m2"]
    progress = await rig.events(EventKind.TURN_PROGRESS)
    assert any(e.data["name"] == "llm.fallback_model" for e in progress)


async def test_every_model_down_fails_the_turn_to_the_fallback_and_flags_it(rig: Rig) -> None:
    rig.fake.script(HttpError(401), HttpError(401), HttpError(401))
    assert await rig.say("hi") == [DEFAULT_FALLBACK_TEXT]
    (flagged,) = await rig.events(EventKind.SESSION_FLAGGED)
    assert "LlmUnavailable" in flagged.data["reason"]
    assert KEY not in json.dumps(flagged.data)
    assert rig.fake.completions_requested == 3  # one per attempt, none retried (a 401)
