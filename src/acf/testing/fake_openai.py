"""``FakeOpenAI``: an OpenAI-compatible chat-completions server on loopback, for tests and
benchmarks that must not call a real model.

Real HTTP (aiohttp's server) on ``127.0.0.1`` and a free port, in the running event loop::

    async with FakeOpenAI() as fake:
        fake.script(Answer("Hello there."), HttpError(429, retry_after="2"))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")

``POST /v1/chat/completions`` streams (``stream: true``) exactly as OpenAI does:
``chat.completion.chunk`` objects as ``data:`` lines, the role first, then one token per
chunk, tool calls by index (id and name first, then argument fragments), the finish reason,
a usage chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``; or the
whole ``chat.completion`` at once. ``GET /v1/models`` lists ``models``.

Each request takes the next scripted item (``script``), or asks ``responder`` when none is
left (default: ``OK.``). Timing is real: ``ttft_ms`` before the answer starts and
``tokens_per_s`` after the first token, server-wide or per ``Answer``.

Every request is recorded (``requests``): its JSON body, lower-cased headers, arrival, the
tokens it streamed out of those its answer had, and whether and when (``time.monotonic``)
the client closed the connection before the end. Usage: ``prompt_tokens`` is
``estimate_prompt_tokens`` of the request (characters of the messages // 4 + 4 per
message), ``completion_tokens`` the tokens streamed.

As a process: ``python -m acf.testing.fake_openai_server --port 8100 --ttft-ms 300
--tokens-per-s 30`` prints its base URL and answers every request alike.
"""

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from acf.pipelines.llm.streamed import estimate_prompt_tokens
from acf.testing.fake_openai_script import (
    CutStream,
    HttpError,
    Item,
    Responder,
    answer_ok,
    plan,
)
from acf.testing.loopback_server import serve

COMPLETIONS = "/v1/chat/completions"


@dataclass(eq=False)
class FakeRequest:
    """One request the fake server received, updated while it is answered."""

    number: int
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    """Lower-cased; left out of the repr, so a failed assertion never prints a key."""
    body: Any
    """The JSON body (None when there was none or it was not JSON)."""
    arrived_at: float
    """``time.monotonic()`` when it arrived."""
    item: Item | None = None
    status: int = 200
    prompt_tokens: int = 0
    tokens_planned: int = 0
    """Content and tool-call tokens of the whole answer."""
    tokens_streamed: int = 0
    """Of those, the ones written before the end (all of them unless cut or closed)."""
    completed: bool = False
    cut: bool = False
    """The server dropped the connection as scripted (``CutStream``)."""
    client_closed: bool = False
    """The client closed the connection before the answer's end."""
    client_closed_at: float | None = None
    ended_at: float | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[Any]:
        found = self.body.get("messages") if isinstance(self.body, dict) else None
        return list(found or [])


class FakeOpenAI:
    """The fake server; ``base_url`` (ending in ``/v1``) once started."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttft_ms: int = 0,
        tokens_per_s: float | None = None,
        responder: Responder = answer_ok,
        models: tuple[str, ...] = ("fake-model",),
    ) -> None:
        self.host = host
        self.port = port
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.responder = responder
        self.models = models
        self.requests: list[FakeRequest] = []
        self._queue: deque[Item] = deque()
        self._numbers = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake OpenAI server is not started")
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *items: Item) -> None:
        """Queue answers for the next chat-completion requests, in order."""
        self._queue.extend(items)

    @property
    def scripted_left(self) -> int:
        return len(self._queue)

    @property
    def completions(self) -> list[FakeRequest]:
        """The chat-completion requests, in arrival order."""
        return [r for r in self.requests if r.path == COMPLETIONS and r.method == "POST"]

    @property
    def completions_requested(self) -> int:
        return len(self.completions)

    async def wait_for_completions(self, count: int) -> list[FakeRequest]:
        """Wait until ``count`` chat-completion requests have arrived."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.completions_requested >= count)
        return self.completions

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(COMPLETIONS, self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner, self.port = await serve(app, self.host, self.port)

    async def aclose(self) -> None:
        """Stop serving; answers still running are cancelled."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _record(self, request: web.Request) -> FakeRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = FakeRequest(
            number=next(self._numbers),
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            arrived_at=time.monotonic(),
        )
        self.requests.append(record)
        async with self._arrived:
            self._arrived.notify_all()
        return record

    async def _models(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "acf"} for m in self.models]
        self._end(record, completed=True)
        return web.json_response({"object": "list", "data": data})

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        record.status = 404
        self._end(record, completed=True)
        error = {"message": f"no route {request.method} {request.path}", "type": "not_found"}
        return web.json_response({"error": error}, status=404)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        try:
            return await self._answer(request, record)
        except (asyncio.CancelledError, ConnectionError):
            if not record.cut:
                record.client_closed = True
                record.client_closed_at = time.monotonic()
            raise
        finally:
            self._end(record)

    def _end(self, record: FakeRequest, completed: bool | None = None) -> None:
        if completed is not None:
            record.completed = completed
        record.ended_at = time.monotonic()
        record.ended.set()

    async def _answer(self, request: web.Request, record: FakeRequest) -> web.StreamResponse:
        body = record.body if isinstance(record.body, dict) else None
        if body is None or not isinstance(body.get("messages"), list):
            record.status = 400
            record.completed = True
            error = {"message": "a JSON body with messages is required", "type": "invalid"}
            return web.json_response({"error": error}, status=400)
        item = self._queue.popleft() if self._queue else self.responder(body)
        record.item = item
        record.prompt_tokens = estimate_prompt_tokens(body)
        if isinstance(item, HttpError):
            await _sleep_ms(item.delay_ms)
            record.status = item.status
            headers = {"Content-Type": "application/json"}
            if item.retry_after is not None:
                headers["Retry-After"] = item.retry_after
            record.completed = True
            return web.Response(status=item.status, body=item.body_bytes(), headers=headers)
        answer = item.answer if isinstance(item, CutStream) else item
        options = body.get("stream_options")
        reply = plan(
            answer,
            completion_id=f"chatcmpl-fake{record.number}",
            created=int(time.time()),
            model=str(body.get("model") or "fake-model"),
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
            prompt_tokens=record.prompt_tokens,
            call_prefix=f"call_{record.number}",
        )
        record.tokens_planned = reply.token_count
        pace = answer.tokens_per_s if answer.tokens_per_s is not None else self.tokens_per_s
        gap_s = 1 / pace if pace else 0.0
        await _sleep_ms(answer.ttft_ms if answer.ttft_ms is not None else self.ttft_ms)
        if not body.get("stream"):
            await asyncio.sleep(gap_s * max(0, reply.token_count - 1))
            record.tokens_streamed = reply.token_count
            record.completed = True
            return web.json_response(reply.whole)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        limit = item.chunks if isinstance(item, CutStream) else None
        for chunk in reply.chunks:
            if chunk.is_token:
                if limit is not None and record.tokens_streamed >= limit:
                    break
                if record.tokens_streamed and gap_s:
                    await asyncio.sleep(gap_s)
            await response.write(b"data: " + json.dumps(chunk.payload).encode() + b"\n\n")
            if chunk.is_token:
                record.tokens_streamed += 1
        if limit is not None:
            record.cut = True
            if request.transport is not None:
                request.transport.close()  # the chunked body never ends
            return response
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        record.completed = True
        return response


def answer_by_model(items: Mapping[str, Item]) -> Responder:
    """A responder answering by the request's model (``HttpError(404)`` for any other)."""

    def respond(request: Mapping[str, Any]) -> Item:
        found = items.get(str(request.get("model")))
        if found is not None:
            return found
        error = {"message": f"The model `{request.get('model')}` does not exist"}
        return HttpError(404, {"error": error | {"type": "invalid_request_error"}})

    return respond


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)
