"""``LlmClient`` over real HTTP against ``FakeOpenAI``: streaming, tool calls, retries on the
injected clock, the circuit breaker, fallback models, cancellation and the deadline; and
against ``RawSse``, a bare endpoint streaming malformed chunks ``FakeOpenAI`` never sends."""

import asyncio
import json
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import openai
import pytest
from aiohttp import web

from acf.pipelines.llm import client as llm_client
from acf.pipelines.llm.breaker import BreakerBoard, BreakerSettings, endpoint_key
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


async def test_an_http_client_passed_in_is_used_and_left_open(fake: FakeOpenAI) -> None:
    fake.script(Answer("Through yours."))
    async with openai.DefaultAsyncHttpxClient() as http:
        client = client_for(fake.base_url, http_client=http)
        try:
            completion = await complete(client, VirtualClock(), Recorder())
        finally:
            await client.aclose()
        assert (completion.text, http.is_closed) == ("Through yours.", False)


# --- the half-open probe is never left taken --------------------------------------------


async def open_circuit(fake: FakeOpenAI, board: BreakerBoard, clock: JumpClock) -> None:
    """Open the endpoint's circuit (the board opens on one failure), then let 30 s pass:
    the next request is the half-open probe."""
    fake.script(HttpError(503))
    opener = client_for(fake.base_url, breakers=board)
    try:
        with pytest.raises(LlmUnavailable, match="opened"):
            await complete(opener, clock, Recorder())
    finally:
        await opener.aclose()
    clock.advance(30_000)


class ProbeTrouble(Exception):
    pass


@pytest.mark.parametrize("trouble", ["event_fails", "event_cancelled", "delta_fails"])
async def test_a_probe_that_ends_without_an_outcome_lets_the_next_request_probe(
    fake: FakeOpenAI, trouble: str
) -> None:
    board = BreakerBoard(BreakerSettings(failures=1))
    clock = JumpClock()
    await open_circuit(fake, board, clock)
    reached = asyncio.Event()
    recorder = Recorder()

    async def on_event(name: str, data: Mapping[str, Any]) -> None:
        await recorder.event(name, data)
        if name == "llm.circuit" and data["state"] == "half_open":
            if trouble == "event_fails":  # the fenced write of the event: the lease is lost
                raise ProbeTrouble("lease lost")
            if trouble == "event_cancelled":  # a supersede while the event is written
                reached.set()
                await asyncio.Event().wait()

    async def on_delta(_text: str) -> None:
        raise ProbeTrouble("the draft could not be published")

    if trouble == "delta_fails":
        fake.script(Answer("Probing."))  # the probe is sent; its answer is never taken
    client = client_for(fake.base_url, breakers=board)
    try:
        probe = asyncio.create_task(
            client.complete(
                REQUEST,
                clock=clock,
                deadline_ms=clock.now_ms() + 60_000,
                on_delta=on_delta if trouble == "delta_fails" else None,
                on_event=on_event,
            )
        )
        if trouble == "event_cancelled":
            await reached.wait()
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe
        else:
            with pytest.raises(ProbeTrouble):
                await probe
        assert [e["state"] for e in recorder.named("llm.circuit")] == ["half_open"]
        fake.script(Answer("Back."))
        after = Recorder()
        completion = await complete(client, clock, after)  # the next request probes
    finally:
        await client.aclose()
    assert completion.text == "Back."
    assert [e["state"] for e in after.named("llm.circuit")] == ["closed"]  # it was the probe
    assert fake.completions_requested == (3 if trouble == "delta_fails" else 2)


# --- 429s are one tenant's quota, not the endpoint's failure ----------------------------


async def test_429s_of_one_tenant_never_open_the_circuit_for_the_others(fake: FakeOpenAI) -> None:
    board = BreakerBoard()
    clock = JumpClock()
    limited = client_for(fake.base_url, breakers=board, retry=RetryPolicy(backoff_ms=()))
    other = client_for(fake.base_url, breakers=board)
    recorder = Recorder()
    try:
        fake.script(*[HttpError(429, retry_after="1")] * 6)
        for _ in range(6):
            with pytest.raises(LlmUnavailable, match=r"HTTP 429.*retries_spent"):
                await complete(limited, clock, recorder)
        fake.script(Answer("Served."))
        completion = await complete(other, clock, recorder)
    finally:
        await limited.aclose()
        await other.aclose()
    assert completion.text == "Served."
    assert recorder.named("llm.circuit") == []
    assert fake.completions_requested == 7


async def test_a_probe_answered_by_429_closes_the_circuit_and_waits_retry_after(
    fake: FakeOpenAI,
) -> None:
    board = BreakerBoard(BreakerSettings(failures=1))
    clock = JumpClock()
    await open_circuit(fake, board, clock)
    fake.script(HttpError(429, retry_after="2"), Answer("After the wait."))
    recorder = Recorder()
    client = client_for(fake.base_url, breakers=board)
    try:
        completion = await complete(client, clock, recorder)
    finally:
        await client.aclose()
    assert completion.text == "After the wait."
    assert [e["state"] for e in recorder.named("llm.circuit")] == ["half_open", "closed"]
    assert [e["delay_ms"] for e in recorder.named("llm.retry")] == [2_000]


# --- a failed cancellation report never replaces the cancellation -----------------------


class Logs:
    """Stands in for a module's structlog logger: what it was told, as dicts (a cached
    logger of an earlier test's configuration would escape ``capture_logs``)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, "log_level": "warning", **fields})


async def test_a_cancellation_report_that_fails_is_logged_and_the_cancel_goes_on(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script(Answer("late", ttft_ms=30_000))
    recorder = Recorder()

    async def on_event(name: str, data: Mapping[str, Any]) -> None:
        await recorder.event(name, data)
        if name == "llm.generation_cancelled":
            raise ProbeTrouble(f"lease lost while writing with {KEY}")

    client = client_for(fake.base_url)
    clock = VirtualClock()
    before = asyncio.all_tasks()
    recorded = Logs()
    monkeypatch.setattr(llm_client, "log", recorded)
    logs = recorded.lines
    try:
        task = asyncio.create_task(
            client.complete(
                REQUEST, clock=clock, deadline_ms=clock.now_ms() + 60_000, on_event=on_event
            )
        )
        (slow,) = await fake.wait_for_completions(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await slow.ended.wait()
    finally:
        await client.aclose()
    assert slow.client_closed
    assert len(recorder.named("llm.generation_cancelled")) == 1
    (logged,) = [e for e in logs if e["event"] == "llm.cancel_report_failed"]
    assert (logged["log_level"], logged["error"]) == ("warning", "ProbeTrouble")
    assert "lease lost" in logged["detail"] and KEY not in repr(logs)
    assert client_tasks_left(before) == set()


# --- malformed chunks ---------------------------------------------------------------------


class RawSse:
    """A bare chat-completions endpoint on loopback: each request gets the next scripted
    stream, its ``data:`` lines written as given, malformed ones included."""

    def __init__(self, *streams: list[bytes]) -> None:
        self.streams = deque(streams)
        self.requests = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for line in self.streams.popleft():
            await response.write(line)
        await response.write_eof()
        return response


def sse(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chunk(choices: object, **extra: object) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m1"} | {
        "choices": choices,
        **extra,
    }


def delta(content: object = None, finish: str | None = None, **fields: object) -> dict[str, Any]:
    shape = {"content": content, **fields} if content is not None or fields else {}
    return {"index": 0, "delta": shape, "finish_reason": finish}


def call(**fields: object) -> dict[str, Any]:
    return delta(tool_calls=[fields])


DONE = b"data: [DONE]\n\n"


async def test_malformed_chunks_are_skipped_and_the_rest_assembled() -> None:
    lookup = {"id": "call_a", "type": "function", "function": {"name": "lookup_order"}}
    stream = [
        sse(chunk([delta("", role="assistant")])),
        sse(chunk(None)),  # choices: null
        sse(chunk("abc")),
        sse(chunk([{"index": 0, "delta": None, "finish_reason": None}])),
        sse(chunk([delta(5)])),  # content that is not a string
        sse(chunk([delta(["x"])])),
        sse(chunk([{"delta": {"content": "Hello"}}])),  # no index: the first choice
        sse(chunk([None, 7, delta(" there")])),
        sse(None),
        sse(5),
        sse("a chunk?"),
        sse(chunk([call(index=0, **lookup)])),
        sse(chunk([call(index=0, function={"arguments": '{"order_id"'})])),
        # a whole call without an index, between the fragments of an indexed one
        sse(chunk([call(id="call_b", function={"name": "create_ticket", "arguments": "{}"})])),
        sse(chunk([call(index=0, function={"arguments": ': "A-1"}'})])),
        sse(chunk([delta(tool_calls={"index": 0})])),  # not a list
        sse(chunk([call(index=0, function="zz")])),  # nothing usable
        sse(chunk([call(index=1, type="function")])),
        sse(chunk([delta(finish="tool_calls")])),
        sse(chunk([], usage={"prompt_tokens": "many", "completion_tokens": 6})),
        DONE,
    ]
    recorder = Recorder()
    async with RawSse(stream) as raw:
        client = client_for(raw.base_url)
        try:
            completion = await complete(client, JumpClock(), recorder)
        finally:
            await client.aclose()
    assert (completion.text, completion.finish_reason) == ("Hello there", "tool_calls")
    assert recorder.deltas == ["Hello", " there"]
    assert completion.tool_calls == (
        ToolCall("call_a", "lookup_order", '{"order_id": "A-1"}'),
        ToolCall("call_b", "create_ticket", "{}"),
    )
    assert completion.usage == Usage(estimate_prompt_tokens(REQUEST), 6)  # usage unreadable
    assert (raw.requests, recorder.events) == (1, [])


async def test_a_stream_the_sdk_cannot_read_is_a_cut_stream_and_retried() -> None:
    broken = [sse(chunk([delta("Hel")])), b"data: \xff\xfe\n\n", DONE]
    clean = [sse(chunk([delta("Fine.")])), sse(chunk([delta(finish="stop")])), DONE]
    clock, recorder = JumpClock(), Recorder()
    async with RawSse(broken, clean) as raw:
        client = client_for(raw.base_url)
        try:
            completion = await complete(client, clock, recorder)
        finally:
            await client.aclose()
    assert (completion.text, completion.requests, raw.requests) == ("Fine.", 2, 2)
    assert recorder.deltas == ["Hel", "Fine."]
    assert recorder.named("llm.retry") == [
        {"model": "m1", "attempt": 1, "reason": "cut_stream", "delay_ms": 1_000, "restart": True}
    ]
