"""``LlmClient`` over real HTTP against ``FakeOpenAI``: streaming, tool calls, retries on the
injected clock, the circuit breaker, fallback models, cancellation and the deadline."""

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from acf.pipelines.llm.breaker import BreakerBoard, endpoint_key
from acf.pipelines.llm.client import LlmClient, LlmTimeouts
from acf.pipelines.llm.completion import LlmUnavailable, ToolCall, Usage
from acf.pipelines.llm.retry import RetryPolicy
from acf.pipelines.llm.streamed import estimate_prompt_tokens
from acf.testing import VirtualClock
from acf.testing.fake_openai import FakeOpenAI, answer_by_model
from acf.testing.fake_openai_script import Answer, CutStream, FakeToolCall, HttpError, tokens

KEY = "sk-test-4f9c2a7be1d0"
REQUEST: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are the support agent."},
        {"role": "user", "content": "Where is my order A-1?"},
    ],
    "temperature": 0.2,
    "max_tokens": 300,
    "tools": [],
}


class JumpClock(VirtualClock):
    """A virtual clock whose ``sleep`` moves time at once: backoffs take no wall time."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(round(seconds * 1000))
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def delta(self, text: str) -> None:
        self.deltas.append(text)

    async def event(self, name: str, data: Mapping[str, Any]) -> None:
        self.events.append((name, dict(data)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for got, data in self.events if got == name]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def client_for(base_url: str, *models: str, **options: Any) -> LlmClient:
    options.setdefault("breakers", BreakerBoard())
    return LlmClient(base_url=base_url, api_key=KEY, models=models or ("m1",), **options)


async def complete(
    client: LlmClient, clock: VirtualClock, recorder: Recorder, deadline_s: float = 120
) -> Any:
    return await client.complete(
        REQUEST,
        clock=clock,
        deadline_ms=clock.now_ms() + round(deadline_s * 1000),
        on_delta=recorder.delta,
        on_event=recorder.event,
    )


async def test_a_plain_answer_is_streamed_in_order_with_usage_and_ttft(fake: FakeOpenAI) -> None:
    clock = VirtualClock()
    text = "Your order A-1 left the warehouse today."

    def respond(_request: Mapping[str, Any]) -> Answer:
        clock.advance(250)  # the model thinks for 250 ms of the clock
        return Answer(text)

    fake.responder = respond
    recorder = Recorder()
    client = client_for(fake.base_url, "gpt-test")
    try:
        completion = await complete(client, clock, recorder)
    finally:
        await client.aclose()
    (sent,) = fake.completions
    assert recorder.deltas == tokens(text)
    assert (completion.text, completion.model, completion.finish_reason) == (
        text,
        "gpt-test",
        "stop",
    )
    assert completion.usage == Usage(sent.prompt_tokens, len(tokens(text)))
    assert sent.prompt_tokens == estimate_prompt_tokens(REQUEST)
    assert (completion.ttft_ms, completion.requests, completion.tool_calls) == (250, 1, ())
    assert sent.body["model"] == "gpt-test"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert (sent.body["temperature"], sent.body["max_tokens"]) == (0.2, 300)
    assert sent.body["messages"] == REQUEST["messages"]
    assert "tools" not in sent.body  # an empty list is refused by OpenAI
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.completed and not sent.client_closed
    assert recorder.events == []


async def test_tool_calls_are_assembled_from_their_fragments(fake: FakeOpenAI) -> None:
    lookup = {"order_id": "A-1", "note": "the blue one, please"}
    fake.script(
        Answer(
            "Let me check.",
            tool_calls=(
                FakeToolCall("lookup_order", lookup),
                FakeToolCall("create_ticket", '{"topic": "late delivery"}', call_id="call_t"),
            ),
        )
    )
    recorder = Recorder()
    client = client_for(fake.base_url)
    try:
        completion = await complete(client, VirtualClock(), recorder)
    finally:
        await client.aclose()
    assert completion.tool_calls == (
        ToolCall("call_1_0", "lookup_order", json.dumps(lookup)),
        ToolCall("call_t", "create_ticket", '{"topic": "late delivery"}'),
    )
    assert len(tokens(json.dumps(lookup))) > 3  # the arguments came in several fragments
    assert (completion.text, completion.finish_reason) == ("Let me check.", "tool_calls")
    assert recorder.deltas == ["Let", " me", " check."]
    assert completion.usage.completion_tokens == fake.completions[0].tokens_planned


async def test_a_429_waits_what_retry_after_asks_on_the_clock(fake: FakeOpenAI) -> None:
    fake.script(HttpError(429, retry_after="7"), Answer("Done."))
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url)
    try:
        completion = await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert clock.slept == [7.0]
    assert recorder.named("llm.retry") == [
        {"model": "m1", "attempt": 1, "reason": "http_429", "delay_ms": 7_000, "restart": False}
    ]
    assert (completion.text, completion.requests, fake.completions_requested) == ("Done.", 2, 2)


async def test_5xx_backs_off_1_2_4_s_then_gives_up_the_model(fake: FakeOpenAI) -> None:
    fake.script(HttpError(500), HttpError(502), HttpError(503), Answer("Third time lucky."))
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url)
    try:
        completion = await complete(client, clock, recorder)
        assert (clock.slept, completion.requests) == ([1.0, 2.0, 4.0], 4)
        fake.script(*[HttpError(500)] * 4)
        clock.slept.clear()
        with pytest.raises(LlmUnavailable) as raised:
            await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert clock.slept == [1.0, 2.0, 4.0]
    assert fake.completions_requested == 8
    assert "m1: HTTP 500: fake error 500 (retries_spent)" in str(raised.value)


async def test_a_400_is_not_retried(fake: FakeOpenAI) -> None:
    fake.script(HttpError(400, {"error": {"message": "messages: invalid role"}}))
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url)
    try:
        with pytest.raises(LlmUnavailable, match="HTTP 400: messages: invalid role"):
            await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert (fake.completions_requested, clock.slept, recorder.named("llm.retry")) == (1, [], [])


async def test_a_stream_cut_midway_is_retried_and_the_draft_restarts(fake: FakeOpenAI) -> None:
    fake.script(CutStream(3, Answer("one two three four five")), Answer("A fresh answer."))
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url)
    try:
        completion = await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert recorder.deltas == ["one", " two", " three", "A", " fresh", " answer."]
    assert recorder.named("llm.retry") == [
        {"model": "m1", "attempt": 1, "reason": "cut_stream", "delay_ms": 1_000, "restart": True}
    ]
    assert completion.text == "A fresh answer."
    cut = fake.completions[0]
    assert (cut.cut, cut.tokens_streamed, cut.client_closed) == (True, 3, False)


async def test_an_endpoint_without_a_usage_chunk_is_estimated(fake: FakeOpenAI) -> None:
    fake.script(Answer("a b c", send_usage=False))
    client = client_for(fake.base_url)
    try:
        completion = await complete(client, VirtualClock(), Recorder())
    finally:
        await client.aclose()
    assert completion.usage == Usage(estimate_prompt_tokens(REQUEST), 3)


def client_tasks_left(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks started since ``before`` and still there, but the fake server's own."""
    return {
        task
        for task in asyncio.all_tasks() - before
        if not getattr(task.get_coro(), "__qualname__", "").startswith("RequestHandler.")
    }


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_dead_endpoint_opens_the_circuit_then_a_probe_after_30_s() -> None:
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    clock, recorder = JumpClock(), Recorder()
    client = client_for(base_url)
    circuit = {"endpoint": endpoint_key(base_url), "state": "open"}
    try:
        with pytest.raises(LlmUnavailable, match=r"connection failed.*retries_spent"):
            await complete(client, clock, recorder)  # four refused connections
        assert len(recorder.named("llm.retry")) == 3
        with pytest.raises(LlmUnavailable, match=r"circuit of .* opened"):
            await complete(client, clock, recorder)  # the fifth opens it: no retry
        assert recorder.named("llm.circuit") == [circuit]
        assert len(recorder.named("llm.retry")) == 3
        slept = list(clock.slept)
        with pytest.raises(LlmUnavailable, match="is open"):
            await complete(client, clock, recorder)  # refused without a request
        assert (clock.slept, len(recorder.named("llm.retry"))) == (slept, 3)
        clock.advance(30_000)
        async with FakeOpenAI(port=port) as back:
            back.script(Answer("I am back."))
            completion = await complete(client, clock, recorder)
            assert (completion.text, back.completions_requested) == ("I am back.", 1)
    finally:
        await client.aclose()
    assert [e["state"] for e in recorder.named("llm.circuit")] == ["open", "half_open", "closed"]


async def test_the_breaker_is_shared_by_clients_of_one_endpoint(fake: FakeOpenAI) -> None:
    board = BreakerBoard()
    fake.script(*[HttpError(503)] * 5)
    clock = JumpClock()
    first = client_for(fake.base_url, breakers=board, retry=RetryPolicy(backoff_ms=()))
    second = client_for(fake.base_url + "/", "other", breakers=board)
    try:
        for _ in range(5):
            with pytest.raises(LlmUnavailable):
                await complete(first, clock, Recorder())
        with pytest.raises(LlmUnavailable, match="is open"):
            await complete(second, clock, Recorder())
    finally:
        await first.aclose()
        await second.aclose()
    assert fake.completions_requested == 5


@pytest.mark.parametrize("status", [404, 400])
async def test_a_fallback_model_answers_when_the_first_is_refused(
    fake: FakeOpenAI, status: int
) -> None:
    fake.responder = answer_by_model({"m2": Answer("From the fallback.")})
    if status == 400:
        fake.script(HttpError(400))
    recorder = Recorder()
    client = client_for(fake.base_url, "m1", "m2")
    try:
        completion = await complete(client, JumpClock(), recorder)
    finally:
        await client.aclose()
    assert (completion.model, completion.text, completion.requests) == (
        "m2",
        "From the fallback.",
        2,
    )
    assert [r.model for r in fake.completions] == ["m1", "m2"]
    assert recorder.named("llm.fallback_model") == [
        {"model": "m2", "previous_model": "m1", "reason": f"http_{status}", "restart": False}
    ]


async def test_every_model_down_raises_unavailable_naming_them(fake: FakeOpenAI) -> None:
    key_echo = {"error": {"message": f"Incorrect API key provided: {KEY}."}}
    fake.responder = answer_by_model({})  # every model: 404
    fake.script(HttpError(401, key_echo))
    recorder = Recorder()
    client = client_for(fake.base_url, "m1", "m2")
    try:
        with pytest.raises(LlmUnavailable) as raised:
            await complete(client, JumpClock(), recorder)
    finally:
        await client.aclose()
    said = str(raised.value)
    assert said.startswith(f"no model answered at {endpoint_key(fake.base_url)}: ")
    assert "m1: HTTP 401: Incorrect API key provided: ***." in said
    assert "m2: HTTP 404: The model `m2` does not exist (not_retryable)" in said
    assert raised.value.__cause__ is None


async def test_the_api_key_is_in_no_message_event_or_log_line(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"message": f"bad key {KEY}", "param": KEY}}
    fake.script(HttpError(500, echo), HttpError(401, echo), HttpError(429, echo, "1"))
    fake.responder = lambda _r: HttpError(503, echo)
    recorder = Recorder()
    client = client_for(fake.base_url, "m1", "m2", "m3")
    try:
        with pytest.raises(LlmUnavailable) as raised:
            await complete(client, JumpClock(), recorder)
    finally:
        await client.aclose()
    assert fake.completions[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert recorder.named("llm.retry") and recorder.named("llm.fallback_model")
    for text in (str(raised.value), repr(raised.value), repr(recorder.events), caplog.text):
        assert KEY not in text


async def test_cancellation_closes_the_stream_and_reports_tokens(fake: FakeOpenAI) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    fake.script(Answer(words, tokens_per_s=20))
    third = asyncio.Event()
    recorder = Recorder()

    async def on_delta(text: str) -> None:
        recorder.deltas.append(text)
        if len(recorder.deltas) == 3:
            third.set()

    client = client_for(fake.base_url)
    clock = VirtualClock()
    before = asyncio.all_tasks()
    task = asyncio.create_task(
        client.complete(
            REQUEST,
            clock=clock,
            deadline_ms=clock.now_ms() + 60_000,
            on_delta=on_delta,
            on_event=recorder.event,
        )
    )
    try:
        await third.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (sent,) = fake.completions
        await sent.ended.wait()
    finally:
        await client.aclose()
    assert sent.client_closed and sent.client_closed_at is not None
    assert 3 <= sent.tokens_streamed < sent.tokens_planned == 40
    assert recorder.named("llm.generation_cancelled") == [
        {
            "model": "m1",
            "completion_tokens_streamed": 3,
            "prompt_tokens_estimate": sent.prompt_tokens,
        }
    ]
    assert client_tasks_left(before) == set()


async def test_cancellation_before_the_first_token_and_during_a_backoff(fake: FakeOpenAI) -> None:
    fake.script(Answer("late", ttft_ms=30_000), HttpError(500))
    clock, recorder = VirtualClock(), Recorder()
    client = client_for(fake.base_url)
    before = asyncio.all_tasks()
    try:
        waiting = asyncio.create_task(complete(client, clock, recorder))
        (slow,) = await fake.wait_for_completions(1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await slow.ended.wait()
        assert slow.client_closed and slow.tokens_streamed == 0
        backing_off = asyncio.create_task(complete(client, clock, recorder))
        await fake.wait_for_completions(2)
        # the 1 s backoff on the virtual clock; a clock has no event for a new sleeper
        while clock.next_due_ms() is None:  # noqa: ASYNC110
            await asyncio.sleep(0)
        backing_off.cancel()
        with pytest.raises(asyncio.CancelledError):
            await backing_off
    finally:
        await client.aclose()
    assert [
        e["completion_tokens_streamed"] for e in recorder.named("llm.generation_cancelled")
    ] == [
        0,
        0,
    ]
    assert len(recorder.named("llm.retry")) == 1
    assert client_tasks_left(before) == set()


async def test_no_retry_is_scheduled_past_the_deadline(fake: FakeOpenAI) -> None:
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url, "m1")
    try:
        fake.script(HttpError(429, retry_after="20"))
        with pytest.raises(LlmUnavailable, match=r"HTTP 429.*\(deadline\)"):
            await complete(client, clock, recorder, deadline_s=10)
        assert (clock.slept, fake.completions_requested) == ([], 1)
        fake.script(HttpError(500), HttpError(500))
        with pytest.raises(LlmUnavailable, match=r"HTTP 500.*\(deadline\)"):
            await complete(client, clock, recorder, deadline_s=2.5)
        assert (clock.slept, fake.completions_requested) == ([1.0], 3)
        with pytest.raises(LlmUnavailable, match="deadline was reached"):
            await complete(client, clock, recorder, deadline_s=0)
        assert fake.completions_requested == 3
    finally:
        await client.aclose()


async def test_no_first_token_in_time_is_a_timeout_and_retried(fake: FakeOpenAI) -> None:
    fake.script(Answer("too slow", ttft_ms=30_000), Answer("On time."))
    clock, recorder = JumpClock(), Recorder()
    client = client_for(fake.base_url, timeouts=LlmTimeouts(first_token_s=0.2))
    try:
        completion = await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert completion.text == "On time."
    assert [e["reason"] for e in recorder.named("llm.retry")] == ["timeout"]
    slow = fake.completions[0]
    await slow.ended.wait()
    assert slow.client_closed
