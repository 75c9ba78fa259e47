"""The agent service pipeline on the real runtime, against ``FakeAgentService`` over real
HTTP: the harness's runtime (a real SQLite file) on its virtual clock, the production
client (``AgentServiceClient``) on loopback in real time. ``Rig.until`` moves the virtual
clock only while no request to the service is in flight, so no request ever meets a
deadline or a backoff the test made up.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.records import TurnRecord
from acf.pipelines.agent_service.availability import Availability
from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts, StreamedEvent
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.agent_service.protocol import Wire
from acf.ports.event_store import EventQuery
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.harness import TENANT, Harness, HarnessOptions

POLL_S = 0.005
"""Real time the test waits while a request is in flight."""
MAX_POLLS = 20_000
"""Polls before ``Rig.until`` gives up: a bound, not a timing."""
API_KEY_ENV = "ACF_TEST_AGENT_SERVICE_KEY"
API_KEY = "sk-agent-test-0123456789"


class Watched(AgentServiceClient):
    """The production client, counting its requests in flight: while one is, only real
    time moves the test on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running = 0

    async def stream(
        self, profile: str, request: Wire, **kwargs: Any
    ) -> AsyncGenerator[StreamedEvent, None]:
        self.running += 1
        try:
            async with contextlib.aclosing(super().stream(profile, request, **kwargs)) as events:
                async for event in events:
                    yield event
        finally:
            self.running -= 1


def fields(base_url: str, **changes: Any) -> AgentServicePipelineFields:
    return AgentServicePipelineFields.model_validate(
        {
            "kind": "agent_service",
            "base_url": base_url,
            "profile": "support",
            "api_key": "${" + API_KEY_ENV + "}",
            **changes,
        }
    )


Done = Callable[[], bool | Awaitable[bool]]


@dataclass
class Rig:
    h: Harness
    svc: FakeAgentService
    client: Watched
    pipeline: AgentServicePipeline

    async def until(self, done: Done, limit_ms: int = 900_000) -> None:
        """Run the runtime until ``done()``: real time while a request is in flight, else
        the virtual clock to its next due sleeper."""
        h = self.h
        end = h.clock.now_ms() + limit_ms
        for _ in range(MAX_POLLS):
            await h.settle()
            answer = done()
            if answer if isinstance(answer, bool) else await answer:
                return
            if self.client.running:
                await asyncio.sleep(POLL_S)
                continue
            due = h.clock.next_due_ms()
            if due is None or due > end:
                raise AssertionError(f"stuck: nothing due within {limit_ms} ms")
            h.clock.advance_to(due)
        raise AssertionError(f"not done after {MAX_POLLS} polls")

    async def idle(self) -> None:
        await self.until(lambda: self.h.idle and not self.client.running)

    async def send(self, text: str, customer: str = "alice", **kwargs: Any) -> str:
        """Send and run until idle; the session id."""
        accepted = await self.h.send(customer, text, **kwargs)
        await self.idle()
        return accepted.session_id

    async def events(self, *kinds: EventKind, tenant: str = TENANT) -> list[FabricEvent]:
        query = EventQuery(kinds=kinds, limit=10_000)
        return list(await self.h.store.events.query(tenant, query))

    async def progress(self, name: str) -> list[Mapping[str, Any]]:
        found = await self.events(EventKind.TURN_PROGRESS)
        return [e.data for e in found if e.data.get("name") == name]

    async def rows(self, session_id: str, tenant: str = TENANT) -> list[AgentSessionRow]:
        return list(await self.h.store.agent_sessions.list_for(tenant, session_id))

    async def records(self, session_id: str) -> list[TurnRecord]:
        store = self.h.store
        turns = await store.turns.list_turns(TENANT, session_id)
        found = [await store.turns.get_record(TENANT, t.turn_id) for t in turns]
        return [r for r in found if r is not None]

    async def payloads(self, session_id: str) -> list[Mapping[str, Any]]:
        rows = await self.h.store.outbox.for_session(TENANT, session_id)
        return [r.payload for r in rows]


@asynccontextmanager
async def open_rig(
    tmp_path: Path,
    monkeypatch: Any,
    *,
    settings: AgentSettings | None = None,
    tenants: tuple[str, ...] = (TENANT,),
    **changes: Any,
) -> AsyncIterator[Rig]:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    async with FakeAgentService(api_key=API_KEY) as svc:
        config = fields(svc.base_url, **changes)
        t = config.timeouts
        client = Watched(svc.base_url, API_KEY, ClientTimeouts(t.connect_s, 10.0, 30.0))
        pipeline = AgentServicePipeline(
            config, client=client, availability=Availability(), health_interval_s=None
        )
        options = HarnessOptions(
            pipeline=pipeline,
            settings=settings or AgentSettings(history_limit=50, deadline_ms=330_000),
            tenants=tenants,
        )
        try:
            async with Harness(tmp_path, options) as h:
                yield Rig(h, svc, client, pipeline)
        finally:
            await pipeline.aclose()


WEB = Channel.WEB
