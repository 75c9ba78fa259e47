"""A bare agent service endpoint on loopback for what ``FakeAgentService`` never does
wrong: each request goes to the test's ``handler``, which writes whatever it likes
(malformed events, error bodies echoing headers, replays that ignore ``Last-Event-ID``).
Requests are recorded with their headers; ``disconnects`` counts the streams whose
client went away before the handler finished."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web

Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]
"""Answers the request numbered (from 1) by the second argument."""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class RawService:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self.disconnects = 0
        self.disconnected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Seen(request.method, request.path, headers))
        try:
            return await self.handler(request, len(self.requests))
        except (asyncio.CancelledError, ConnectionError):
            self.disconnects += 1
            self.disconnected.set()
            raise


async def sse(request: web.Request, *blocks: str, then_wait: bool = False) -> web.StreamResponse:
    """An event stream writing ``blocks`` (raw SSE text, each ended by a blank line); with
    ``then_wait`` it then stays open until the client leaves."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for block in blocks:
        await response.write(f"{block}\n\n".encode())
    if then_wait:
        await asyncio.Event().wait()
    return response


def event(event_id: int | None, name: str, data: str) -> str:
    """One SSE block (no ``id:`` line when ``event_id`` is None)."""
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {name}\ndata: {data}"
