"""The reference agent service (examples/agent_service) served by uvicorn on a free loopback
port, against a ``FakeOpenAI``; and a client helper that reads one execute stream."""

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from examples.agent_service.app import AgentService, Settings, create_app
from httpx_sse import aconnect_sse

from acf.pipelines.agent_service.protocol import (
    API_KEY_HEADER,
    KEY_HEADER,
    LAST_EVENT_HEADER,
    SESSION_HEADER,
    AgentEvent,
    parse_event,
)
from acf.testing import FakeOpenAI

API_KEY = "svc-key-4c1d"
EXECUTE = "/v1/agents/support/execute"


@dataclass
class Served:
    url: str
    service: AgentService
    http: httpx.AsyncClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serving(db: Path, model: FakeOpenAI | str, **options: Any) -> AsyncIterator[Served]:
    """The service on ``db``, its model ``model`` (a fake, or its base URL); no SDK retries
    unless ``options`` say."""
    settings = Settings(
        llm_base_url=model if isinstance(model, str) else model.base_url,
        model="fake-model",
        db_path=db,
        llm_api_key="test",
        api_key=API_KEY,
        **{"llm_max_retries": 0, **options},
    )
    service = AgentService(settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Served(url, service, http)
    finally:
        server.should_exit = True
        await task


def body(
    text: str,
    *,
    session: str | None = None,
    answer: tuple[str, str] | None = None,
    supersedes: str | None = None,
    history: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    return {
        "conversation_id": "conv-1",
        "agent_session_id": session,
        "message": {"text": text},
        "chat_history": [{"role": r, "content": c} for r, c in history],
        "user_context": {"tenant": "acme", "customer_id": "c-7", "channel": "web"},
        "answer": None if answer is None else {"ask_id": answer[0], "text": answer[1]},
        "supersedes": supersedes,
    }


def headers(key: str, last_event_id: str | None = None) -> dict[str, str]:
    sent = {API_KEY_HEADER: API_KEY, KEY_HEADER: key}
    if last_event_id is not None:
        sent[LAST_EVENT_HEADER] = last_event_id
    return sent


@dataclass
class Streamed:
    session_header: str
    events: list[tuple[int, AgentEvent]]

    @property
    def types(self) -> list[str]:
        return [e.type.value for _, e in self.events]

    @property
    def last(self) -> AgentEvent:
        return self.events[-1][1]


async def execute(
    http: httpx.AsyncClient,
    sent: dict[str, Any],
    key: str,
    *,
    last_event_id: str | None = None,
    until: Callable[[AgentEvent], bool] | None = None,
) -> Streamed:
    """One execute request's events (all of them; or up to the first ``until`` accepts,
    then the connection is closed)."""
    async with aconnect_sse(
        http, "POST", EXECUTE, json=sent, headers=headers(key, last_event_id)
    ) as source:
        assert source.response.status_code == 200, await source.response.aread()
        events: list[tuple[int, AgentEvent]] = []
        async for sse in source.aiter_sse():
            event = parse_event(sse.event, sse.data)
            events.append((int(sse.id), event))
            if until is not None and until(event):
                break
        return Streamed(source.response.headers[SESSION_HEADER], events)
