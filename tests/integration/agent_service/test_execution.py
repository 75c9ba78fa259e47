"""``run_execution`` over real HTTP against ``FakeAgentService``: retries classified as the
seed says (503 retried, 500 once, 408 and 400 never) with the same ``Idempotency-Key`` on
the injected clock, a cut stream resumed by ``Last-Event-ID`` without a duplicate chunk,
the first-event timeout, the deadline, the circuit breaker (open: no request; a cancelled
probe passes its turn on), cancellation closing the stream, and secrets kept out of
errors. ``RawService`` plays the services the fake is not: one that replays a stream from
its start, one that runs an execution again after a retryable ``ERROR``."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts, StreamedEvent
from acf.pipelines.agent_service.execution import ExecutionFailed, ExecutionResult, run_execution
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.agent_service.protocol import (
    AnswerChunkData,
    AskUserData,
    CompleteData,
    CustomerMessage,
    ErrorData,
    EventType,
    ExecuteRequest,
    UserContext,
)
from acf.pipelines.llm.breaker import BreakerSettings, CircuitBreaker, CircuitState
from acf.testing import VirtualClock
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_agent_steps import Ask, Chunks, Complete, Cut, Error, Reject, Sleep, Think
from tests.integration.agent_service.raw_service import RawService, event, sse

KEY = "agent-key-2c8d41e07a95"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
REQUEST = ExecuteRequest(
    conversation_id="ses-1",
    message=CustomerMessage(text="Refund order A-1"),
    user_context=UserContext(tenant="acme"),
)
TIMEOUTS = ClientTimeouts(connect_s=2.0, first_event_s=5.0, stream_s=10.0)
K = FailureKind


class JumpClock(VirtualClock):
    """A virtual clock whose ``sleep`` moves time at once: backoffs take no wall time."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(round(seconds * 1000))
        await asyncio.sleep(0)


class Sink:
    """What ``run_execution`` reported."""

    def __init__(self) -> None:
        self.events: list[StreamedEvent] = []
        self.restarts = 0
        self.circuit: list[CircuitState] = []

    async def event(self, streamed: StreamedEvent) -> None:
        self.events.append(streamed)

    async def restart(self) -> None:
        self.restarts += 1

    async def changed(self, state: CircuitState) -> None:
        self.circuit.append(state)

    def chunks(self) -> list[str]:
        return [e.event.text for e in self.events if isinstance(e.event, AnswerChunkData)]


@pytest.fixture
async def svc() -> AsyncIterator[FakeAgentService]:
    async with FakeAgentService(api_key=KEY) as service:
        yield service


@pytest.fixture
async def client(svc: FakeAgentService) -> AsyncIterator[AgentServiceClient]:
    made = AgentServiceClient(svc.base_url, KEY, TIMEOUTS)
    yield made
    await made.aclose()


async def execute(
    client: AgentServiceClient,
    clock: VirtualClock,
    sink: Sink,
    *,
    breaker: CircuitBreaker | None = None,
    deadline_s: float = 120.0,
    retries: int = 3,
    **options: Any,
) -> ExecutionResult:
    return await run_execution(
        client,
        "support",
        REQUEST,
        key=options.pop("key", "exe-1"),
        supersedes=options.pop("supersedes", None),
        clock=clock,
        deadline_ms=clock.now_ms() + round(deadline_s * 1000),
        retries=retries,
        breaker=breaker or CircuitBreaker(),
        on_event=sink.event,
        traceparent=TRACE,
        on_restart=sink.restart,
        on_circuit=sink.changed,
        **options,
    )


async def failure_of(call: Any) -> ExecutionFailed:
    with pytest.raises(ExecutionFailed) as raised:
        await call
    return raised.value


async def test_the_happy_path_streams_each_event_once_and_completes(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock, sink = JumpClock(), Sink()
    svc.enqueue([Think("Looking"), Chunks("Refund done."), Complete()])
    result = await execute(client, clock, sink, supersedes="exe-0")
    assert isinstance(result.final, CompleteData)
    assert result.final.answer == "Refund done."
    assert (result.agent_session_id, result.attempts, result.resumes) == ("as-1", 1, 0)
    assert (result.first_event_ms, result.first_chunk_ms, result.duration_ms) == (0, 0, 0)
    assert [e.event.type for e in sink.events] == [EventType.THOUGHT] + [EventType.ANSWER_CHUNK] * 3
    assert "".join(sink.chunks()) == "Refund done."
    (sent,) = svc.requests
    assert sent.body == REQUEST.model_copy(update={"supersedes": "exe-0"})
    assert (sent.headers["x-api-key"], sent.headers["traceparent"]) == (KEY, TRACE)
    assert clock.slept == [] and sink.circuit == []


async def test_an_ask_user_ends_the_execution(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue([Ask("Which order?", options=["A-1", "B-2"], ask_id="ask-7")])
    result = await execute(client, JumpClock(), Sink())
    assert isinstance(result.final, AskUserData)
    assert (result.final.ask_id, result.final.options) == ("ask-7", ["A-1", "B-2"])


async def test_503_twice_then_ok_is_retried_after_1_and_2_s_with_the_same_key(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock, sink = JumpClock(), Sink()
    svc.enqueue([Reject(503, times=2), Chunks("ok", parts=1), Complete()])
    result = await execute(client, clock, sink)
    assert (result.attempts, result.resumes, clock.slept) == (3, 0, [1.0, 2.0])
    assert [(r.key, r.status, r.last_event_id) for r in svc.requests] == [
        ("exe-1", 503, None),
        ("exe-1", 503, None),
        ("exe-1", 200, None),
    ]
    assert [r.body for r in svc.requests] == [REQUEST] * 3
    assert sink.chunks() == ["ok"]


async def test_retry_after_is_waited(svc: FakeAgentService, client: AgentServiceClient) -> None:
    clock = JumpClock()
    svc.enqueue([Reject(503, retry_after_s=3), Complete("done")])
    result = await execute(client, clock, Sink())
    assert (result.attempts, clock.slept) == (2, [3.0])


async def test_500_once_then_ok_is_retried(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock = JumpClock()
    svc.enqueue([Reject(500), Complete("done")])
    result = await execute(client, clock, Sink())
    assert (result.attempts, clock.slept, len(svc.requests)) == (2, [1.0], 2)


async def test_500_twice_fails_after_two_requests(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock = JumpClock()
    svc.enqueue([Reject(500, times=2, message="boom"), Complete("done")])
    failed = await failure_of(execute(client, clock, Sink()))
    assert (failed.kind, failed.status, failed.attempts) == (K.SERVER_ERROR, 500, 2)
    assert failed.message == "HTTP 500: boom (given up after 2 request(s))"
    assert len(svc.requests) == 2


@pytest.mark.parametrize(("status", "kind"), [(408, K.SERVICE_TIMEOUT), (400, K.BAD_REQUEST)])
async def test_408_and_400_are_never_retried(
    svc: FakeAgentService, client: AgentServiceClient, status: int, kind: FailureKind
) -> None:
    clock = JumpClock()
    breaker = CircuitBreaker(BreakerSettings(failures=1))
    svc.enqueue([Reject(status), Complete("done")])
    failed = await failure_of(execute(client, clock, Sink(), breaker=breaker))
    assert (failed.kind, failed.status, failed.attempts) == (kind, status, 1)
    assert len(svc.requests) == 1 and clock.slept == []
    # a 400 is the service answering: a sign of life; a 408 is its failure
    opened = CircuitState.OPEN if status == 408 else CircuitState.CLOSED
    assert breaker.state(clock.now_ms()) is opened


async def test_a_cut_stream_is_resumed_from_its_last_event_id_without_a_duplicate_chunk(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock, sink = JumpClock(), Sink()
    svc.enqueue([Chunks("Your refund ", parts=3), Cut(), Chunks("is done.", parts=2), Complete()])
    result = await execute(client, clock, sink)
    assert "".join(sink.chunks()) == "Your refund is done."
    assert [e.id for e in sink.events] == ["1", "2", "3", "4", "5"]
    assert isinstance(result.final, CompleteData)
    assert result.final.answer == "Your refund is done."
    assert (result.attempts, result.resumes, clock.slept) == (2, 1, [1.0])
    assert [(r.key, r.last_event_id) for r in svc.requests] == [("exe-1", None), ("exe-1", "3")]


async def test_a_service_replaying_from_the_start_gives_no_duplicate() -> None:
    chunk = '{{"agent_session_id": "as-9", "text": "{}"}}'

    async def replays(request: web.Request, number: int) -> web.StreamResponse:
        blocks = [
            event(1, "ANSWER_CHUNK", chunk.format("a")),
            event(2, "THOUGHT", '{"agent_session_id": "as-9"}'),
        ]
        if number == 1:
            response = await sse(request, *blocks)
            assert request.transport is not None
            request.transport.close()  # cut before the final event
            return response
        done = '{"agent_session_id": "as-9", "answer": "ab"}'
        return await sse(
            request,
            *blocks,
            event(3, "ANSWER_CHUNK", chunk.format("b")),
            event(4, "COMPLETE", done),
        )

    async with RawService(replays) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        sink = Sink()
        try:
            result = await execute(client, JumpClock(), sink)
        finally:
            await client.aclose()
    assert [e.id for e in sink.events] == ["1", "2", "3"]
    assert sink.chunks() == ["a", "b"]
    assert (result.attempts, result.resumes, result.agent_session_id) == (2, 1, "as-9")
    assert [r.headers.get("last-event-id") for r in raw.requests] == [None, "2"]


def chunk(text: str) -> str:
    return f'{{"agent_session_id": "as-3", "text": "{text}"}}'


def retryable_error(message: str) -> str:
    said = f'"code": "overloaded", "message": "{message}", "retryable": true'
    return f'{{"agent_session_id": "as-3", {said}}}'


async def test_a_retryable_error_runs_the_execution_again_after_it() -> None:
    async def service(request: web.Request, number: int) -> web.StreamResponse:
        if number == 1:
            error = retryable_error("try again")
            first = event(1, "ANSWER_CHUNK", chunk("Hal"))
            return await sse(request, first, event(2, "ERROR", error))
        done = '{"agent_session_id": "as-3", "answer": "Hello"}'
        again = event(3, "ANSWER_CHUNK", chunk("Hello"))
        return await sse(request, again, event(4, "COMPLETE", done))

    async with RawService(service) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        clock, sink = JumpClock(), Sink()
        try:
            result = await execute(client, clock, sink)
        finally:
            await client.aclose()
    assert sink.chunks() == ["Hal", "Hello"] and sink.restarts == 1
    assert (result.attempts, result.resumes, clock.slept) == (2, 0, [1.0])
    assert [r.headers.get("idempotency-key") for r in raw.requests] == ["exe-1", "exe-1"]
    assert [r.headers.get("last-event-id") for r in raw.requests] == [None, "2"]


async def test_a_retryable_error_that_persists_fails_when_retries_are_spent() -> None:
    async def service(request: web.Request, number: int) -> web.StreamResponse:
        return await sse(request, event(number, "ERROR", retryable_error(f"busy {number}")))

    async with RawService(service) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        clock, sink = JumpClock(), Sink()
        try:
            failed = await failure_of(execute(client, clock, sink, retries=1))
        finally:
            await client.aclose()
    assert (failed.kind, failed.attempts, clock.slept) == (K.AGENT_ERROR, 2, [1.0])
    assert failed.message == "ERROR overloaded: busy 2 (given up after 2 request(s))"
    assert sink.restarts == 0  # nothing was streamed before the errors


async def test_a_non_retryable_error_is_the_final_event(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue([Think("Hmm"), Error("policy", "cannot refund this order")])
    result = await execute(client, JumpClock(), Sink())
    assert isinstance(result.final, ErrorData)
    assert (result.final.code, result.final.retryable, result.attempts) == ("policy", False, 1)


async def test_no_first_event_in_time_is_retried_then_fails() -> None:
    async with FakeAgentService(first_event_s=3.0) as svc:
        timeouts = ClientTimeouts(connect_s=2.0, first_event_s=0.2, stream_s=10.0)
        client = AgentServiceClient(svc.base_url, None, timeouts)
        clock = JumpClock()
        try:
            failed = await failure_of(execute(client, clock, Sink(), retries=1))
        finally:
            await client.aclose()
        assert (failed.kind, failed.attempts, clock.slept) == (K.FIRST_EVENT_TIMEOUT, 2, [1.0])
        assert failed.message == "no event within 0.2 s (given up after 2 request(s))"
        assert [r.key for r in svc.requests] == ["exe-1", "exe-1"]


async def test_no_retry_waits_past_the_deadline(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock = JumpClock()
    svc.enqueue([Reject(503, times=3, message="busy"), Complete("done")])
    failed = await failure_of(execute(client, clock, Sink(), deadline_s=2.5))
    assert (failed.kind, failed.attempts, clock.slept) == (K.UNAVAILABLE, 2, [1.0])
    assert failed.message == "HTTP 503: busy (no time left to retry before the deadline)"


async def test_an_open_circuit_sends_no_request(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock = JumpClock()
    breaker = CircuitBreaker(BreakerSettings(failures=1))
    breaker.record_failure(clock.now_ms())
    failed = await failure_of(execute(client, clock, Sink(), breaker=breaker))
    assert (failed.kind, failed.attempts) == (K.UNAVAILABLE, 0)
    assert failed.message == f"circuit open at {client.endpoint}"
    assert svc.requests == []


async def test_the_circuit_opening_ends_the_retries(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock, sink = JumpClock(), Sink()
    breaker = CircuitBreaker(BreakerSettings(failures=2))
    svc.enqueue([Reject(503, times=5, message="down"), Complete("done")])
    failed = await failure_of(execute(client, clock, sink, breaker=breaker))
    assert (failed.kind, failed.attempts) == (K.UNAVAILABLE, 2)
    assert failed.message == "HTTP 503: down (the circuit opened)"
    assert sink.circuit == [CircuitState.OPEN] and clock.slept == [1.0]


async def test_a_successful_probe_closes_the_circuit(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock, sink = JumpClock(), Sink()
    breaker = CircuitBreaker(BreakerSettings(failures=1, open_ms=30_000))
    breaker.record_failure(clock.now_ms())
    clock.advance(30_000)
    await execute(client, clock, sink, breaker=breaker)
    assert sink.circuit == [CircuitState.HALF_OPEN, CircuitState.CLOSED]


async def test_a_cancelled_execution_closes_its_stream_and_frees_the_probe(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    clock = JumpClock()
    breaker = CircuitBreaker(BreakerSettings(failures=1, open_ms=30_000))
    breaker.record_failure(clock.now_ms())
    clock.advance(30_000)
    svc.enqueue([Chunks("Work", parts=1), Sleep(30), Complete()])
    first = asyncio.Event()

    async def on_event(streamed: StreamedEvent) -> None:
        first.set()

    task = asyncio.create_task(
        run_execution(
            client,
            "support",
            REQUEST,
            key="exe-1",
            supersedes=None,
            clock=clock,
            deadline_ms=clock.now_ms() + 120_000,
            retries=3,
            breaker=breaker,
            on_event=on_event,
            traceparent=None,
        )
    )
    await asyncio.wait_for(first.wait(), 5)
    assert breaker.allow(clock.now_ms()) == (False, None)  # the probe is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    execution = svc.executions["exe-1"]
    await asyncio.wait_for(execution.wait_ended(), 5)
    assert execution.cancelled  # the service saw the disconnect
    assert breaker.allow(clock.now_ms()) == (True, None)  # its turn passed on


async def test_no_secret_in_a_failure(svc: FakeAgentService) -> None:
    wrong = "wrong-agent-key-93b1f0c2"
    client = AgentServiceClient(svc.base_url, wrong, TIMEOUTS)
    try:
        failed = await failure_of(execute(client, JumpClock(), Sink()))
    finally:
        await client.aclose()
    assert (failed.kind, failed.status, failed.attempts) == (K.UNAUTHORIZED, 401, 1)
    shown = f"{failed} {failed!r} {failed.__dict__} {client!r}"
    assert wrong not in shown and KEY not in shown
