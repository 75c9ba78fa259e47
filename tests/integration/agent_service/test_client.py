"""``AgentServiceClient`` over real HTTP on loopback, one request at a time: against
``FakeAgentService`` (events, headers, resume by ``Last-Event-ID``, status codes, timeouts,
disconnects, session status and health) and against ``RawService`` (what a broken service
sends: malformed events, a body that is no event stream, an error echoing the key)."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts, StreamedEvent
from acf.pipelines.agent_service.failures import CallFailed, FailureKind
from acf.pipelines.agent_service.protocol import (
    AgentSessionState,
    CustomerMessage,
    EventType,
    ExecuteRequest,
    UserContext,
)
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_agent_steps import Chunks, Complete, Cut, Reject, Sleep, Think, Tool
from tests.integration.agent_service.raw_service import RawService, event, sse

KEY = "agent-key-7f3e9b21c4d8"
REQUEST = ExecuteRequest(
    conversation_id="ses-1",
    message=CustomerMessage(text="Where is order A-1?"),
    user_context=UserContext(tenant="acme", channel="web"),
)
TIMEOUTS = ClientTimeouts(connect_s=2.0, first_event_s=5.0, stream_s=10.0)
K = FailureKind


@pytest.fixture
async def svc() -> AsyncIterator[FakeAgentService]:
    async with FakeAgentService(api_key=KEY) as service:
        yield service


@pytest.fixture
async def client(svc: FakeAgentService) -> AsyncIterator[AgentServiceClient]:
    made = AgentServiceClient(svc.base_url, KEY, TIMEOUTS)
    yield made
    await made.aclose()


async def drain(
    client: AgentServiceClient, got: list[StreamedEvent] | None = None, **options: Any
) -> list[StreamedEvent]:
    """Every event of one request (into ``got`` as they come, kept when it fails)."""
    got = [] if got is None else got
    options.setdefault("key", "exe-1")
    async with contextlib.aclosing(client.stream("support", REQUEST, **options)) as events:
        async for streamed in events:
            got.append(streamed)
    return got


async def failure_of(call: Awaitable[object]) -> CallFailed:
    with pytest.raises(CallFailed) as raised:
        await call
    return raised.value


async def cancelled_by_disconnect(svc: FakeAgentService, key: str = "exe-1") -> bool:
    """Whether the run of ``key`` ended cancelled (the service saw the client leave); its
    script sleeps far longer than this waits."""
    execution = svc.executions[key]
    await asyncio.wait_for(execution.wait_ended(), 5)
    return execution.cancelled


async def test_a_stream_yields_each_event_with_its_id_until_the_final_one(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue(
        [Think("Looking it up"), Tool("track", {"id": "A-1"}), Chunks("On its way."), Complete()]
    )
    got = await drain(client, key="exe-1", traceparent="00-4bf92f3577b34da6-00f067aa0ba902b7-01")
    assert [e.event.type for e in got] == [
        EventType.THOUGHT,
        EventType.TOOL_START,
        EventType.TOOL_END,
        EventType.ANSWER_CHUNK,
        EventType.ANSWER_CHUNK,
        EventType.ANSWER_CHUNK,
        EventType.COMPLETE,
    ]
    assert [e.id for e in got] == [str(n) for n in range(1, 8)]
    assert {e.agent_session_id_header for e in got} == {"as-1"}
    assert got[-1].event.model_dump()["answer"] == "On its way."
    (sent,) = svc.requests
    assert (sent.profile, sent.key, sent.last_event_id, sent.body) == (
        "support",
        "exe-1",
        None,
        REQUEST,
    )
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["traceparent"] == "00-4bf92f3577b34da6-00f067aa0ba902b7-01"
    assert sent.headers["accept"] == "text/event-stream"


async def test_a_cut_stream_fails_and_resumes_after_its_last_event_id(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue([Chunks("abc", parts=3), Cut(), Chunks("de", parts=2), Complete()])
    got: list[StreamedEvent] = []
    failed = await failure_of(drain(client, got))
    assert failed.kind is K.CUT
    assert [e.id for e in got] == ["1", "2", "3"]
    rest = await drain(client, last_event_id="3")
    assert [e.id for e in rest] == ["4", "5", "6"]
    assert [e.event.type for e in rest][-1] is EventType.COMPLETE
    assert [(r.key, r.last_event_id) for r in svc.requests] == [("exe-1", None), ("exe-1", "3")]
    assert "traceparent" not in svc.requests[1].headers


@pytest.mark.parametrize(
    ("status", "retry_after_s", "kind"),
    [
        (503, 7.0, K.UNAVAILABLE),
        (429, 2.0, K.UNAVAILABLE),
        (502, None, K.UNAVAILABLE),
        (500, None, K.SERVER_ERROR),
        (408, None, K.SERVICE_TIMEOUT),
        (400, None, K.BAD_REQUEST),
        (422, None, K.BAD_REQUEST),
    ],
)
async def test_an_http_error_is_classified_with_its_message_and_retry_after(
    svc: FakeAgentService,
    client: AgentServiceClient,
    status: int,
    retry_after_s: float | None,
    kind: FailureKind,
) -> None:
    svc.enqueue(
        [Reject(status, retry_after_s=retry_after_s, message="busy, try later"), Complete()]
    )
    failed = await failure_of(drain(client))
    assert (failed.kind, failed.status, failed.retry_after_s) == (kind, status, retry_after_s)
    assert failed.message == f"HTTP {status}: busy, try later"


async def test_a_wrong_key_is_unauthorized_and_no_key_is_shown(svc: FakeAgentService) -> None:
    wrong = "wrong-key-5d1e9a7c0b"
    client = AgentServiceClient(svc.base_url, wrong, TIMEOUTS)
    try:
        failed = await failure_of(drain(client))
    finally:
        await client.aclose()
    assert (failed.kind, failed.status) == (K.UNAUTHORIZED, 401)
    shown = f"{failed} {failed!r} {client!r} {failed.__dict__}"
    assert wrong not in shown and KEY not in shown
    assert svc.requests[0].headers["x-api-key"] == wrong


async def test_an_error_body_echoing_the_key_is_masked_and_cut() -> None:
    async def echo_key(request: web.Request, _n: int) -> web.StreamResponse:
        said = f"bad request, you sent X-API-Key: {request.headers['X-API-Key']} " + "x" * 900
        return web.json_response({"message": said}, status=400)

    async with RawService(echo_key) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        try:
            failed = await failure_of(drain(client))
        finally:
            await client.aclose()
    assert failed.kind is K.BAD_REQUEST
    assert failed.message.startswith("HTTP 400: bad request, you sent X-API-Key: ***")
    assert KEY not in repr(failed) and len(failed.message) <= len("HTTP 400: ") + 200


async def json_ok(request: web.Request, _n: int) -> web.StreamResponse:
    return web.json_response({"answer": "hello"})


async def ends_early(request: web.Request, _n: int) -> web.StreamResponse:
    return await sse(request, event(1, "ANSWER_CHUNK", '{"agent_session_id": "a", "text": "hi"}'))


@pytest.mark.parametrize(
    ("blocks", "said"),
    [
        ([event(1, "SHOUT", "{}")], "unknown event 'SHOUT'"),
        (
            [event(1, "ANSWER_CHUNK", '{"text": "hi"}')],
            "ANSWER_CHUNK: invalid or missing agent_session_id",
        ),
        ([event(1, "COMPLETE", "not json")], "COMPLETE: invalid or missing data"),
        ([event(None, "THOUGHT", '{"agent_session_id": "a"}')], "'THOUGHT' event without an id"),
        (
            [
                event(1, "THOUGHT", '{"agent_session_id": "a"}'),
                event(None, "THOUGHT", '{"agent_session_id": "a"}'),
            ],
            "event id '1' repeated",
        ),
    ],
)
async def test_a_malformed_event_is_a_protocol_failure(blocks: list[str], said: str) -> None:
    async def answer(request: web.Request, _n: int) -> web.StreamResponse:
        return await sse(request, ": keepalive", "retry: 3000", *blocks, then_wait=True)

    async with RawService(answer) as raw:
        client = AgentServiceClient(raw.base_url, None, TIMEOUTS)
        try:
            failed = await failure_of(drain(client))
        finally:
            await client.aclose()
        await asyncio.wait_for(raw.disconnected.wait(), 5)  # the stream was closed
    assert (failed.kind, failed.message) == (K.PROTOCOL, said)
    assert "x-api-key" not in raw.requests[0].headers  # no key configured: none sent


@pytest.mark.parametrize(
    ("handler", "kind", "said"),
    [
        (json_ok, K.PROTOCOL, "expected text/event-stream, got 'application/json'"),
        (ends_early, K.CUT, "the stream ended before a final event"),
    ],
)
async def test_an_answer_that_is_no_complete_event_stream_fails(
    handler: Callable[[web.Request, int], Awaitable[web.StreamResponse]],
    kind: FailureKind,
    said: str,
) -> None:
    async with RawService(handler) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        try:
            failed = await failure_of(drain(client))
        finally:
            await client.aclose()
    assert (failed.kind, failed.message) == (kind, said)


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = AgentServiceClient(f"http://127.0.0.1:{port}", KEY, TIMEOUTS)
    try:
        failed = await failure_of(drain(client))
    finally:
        await client.aclose()
    assert failed.kind is K.UNAVAILABLE
    assert failed.message == f"connection to http://127.0.0.1:{port} failed (ConnectError)"


async def test_keepalives_are_no_first_event_and_the_timeout_disconnects() -> None:
    async with FakeAgentService(first_event_s=3.0, heartbeat_s=0.05) as svc:
        timeouts = ClientTimeouts(connect_s=2.0, first_event_s=0.4, stream_s=10.0)
        client = AgentServiceClient(svc.base_url, None, timeouts)
        try:
            failed = await failure_of(drain(client))
        finally:
            await client.aclose()
        assert (failed.kind, failed.message) == (K.FIRST_EVENT_TIMEOUT, "no event within 0.4 s")
        assert await cancelled_by_disconnect(svc)


@pytest.mark.parametrize(("stream_s", "within_s", "said"), [(0.5, None, 0.5), (10.0, 0.5, 0.5)])
async def test_a_stream_must_end_within_its_window(
    svc: FakeAgentService, stream_s: float, within_s: float | None, said: float
) -> None:
    svc.enqueue([Chunks("abcdefghij", parts=10, interval_s=0.2), Complete()])
    client = AgentServiceClient(svc.base_url, KEY, ClientTimeouts(2.0, 5.0, stream_s))
    got: list[StreamedEvent] = []
    try:
        failed = await failure_of(drain(client, got, within_s=within_s))
    finally:
        await client.aclose()
    assert (failed.kind, failed.message) == (K.STREAM_TIMEOUT, f"no final event within {said:g} s")
    assert 1 <= len(got) < 10


async def test_closing_the_stream_early_disconnects_at_once(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue([Chunks("a", parts=1), Sleep(30), Complete()])
    events = client.stream("support", REQUEST, key="exe-1")
    first = await anext(events)
    assert first.event.type is EventType.ANSWER_CHUNK
    await events.aclose()
    assert await cancelled_by_disconnect(svc)


async def test_cancelling_the_consumer_disconnects_at_once(
    svc: FakeAgentService, client: AgentServiceClient
) -> None:
    svc.enqueue([Chunks("a", parts=1), Sleep(30), Complete()])
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(client.stream("support", REQUEST, key="exe-1")) as events:
            async for _ in events:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await cancelled_by_disconnect(svc)


async def test_session_status_and_health(svc: FakeAgentService, client: AgentServiceClient) -> None:
    await drain(client)
    status = await client.session_status("as-1")
    assert (status.agent_session_id, status.status, status.profile) == (
        "as-1",
        AgentSessionState.COMPLETED,
        "support",
    )
    missing = await failure_of(client.session_status("as-404"))
    assert (missing.kind, missing.status) == (K.BAD_REQUEST, 404)
    assert (await client.health()).status == "ok"
    svc.set_health("degraded")
    assert (await client.health()).status == "degraded"
    svc.set_health("down")
    down = await failure_of(client.health())
    assert (down.kind, down.status) == (K.UNAVAILABLE, 503)


async def test_a_health_answer_that_is_no_health_body_is_a_protocol_failure() -> None:
    async def odd(request: web.Request, _n: int) -> web.StreamResponse:
        return web.json_response({"status": "sleepy"})

    async with RawService(odd) as raw:
        client = AgentServiceClient(raw.base_url, KEY, TIMEOUTS)
        try:
            failed = await failure_of(client.health())
        finally:
            await client.aclose()
    assert (failed.kind, failed.message) == (K.PROTOCOL, "/health: invalid or missing status")
    assert raw.requests[0].headers["x-api-key"] == KEY
