"""``AgentServicePipeline``: a turn delegated to an external agent service over HTTP + SSE
(``pipeline: {kind: agent_service}``, DESIGN §16, seed 004).

One run is an ``AgentServiceTurn`` (``acf.pipelines.agent_service.turn``). The client is
made on the first request (the API key's secret is read then, never when the
configuration loads); the endpoint's circuit breaker and health checks are the process's
(``availability.shared_availability``), shared by every agent calling the same base URL.

New messages while a turn runs (``on_new_messages``): once the running execution reported
a ``TOOL_START`` whose side effect is not ``none``, the turn is not cut any more (QUEUE:
the reply goes out, the new messages form the next turn); before that the agent's policy
applies (by default SUPERSEDE: the stream is closed, and the restart names the old
execution in ``supersedes``).
"""

import hashlib
import json
from collections.abc import Sequence

from acf.config.agent_service import AgentServicePipelineFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.messages import InboundMessage
from acf.domain.replies import PipelineResult
from acf.domain.supersede import SupersedeDecision
from acf.pipelines.agent_service.availability import (
    HEALTH_INTERVAL_S,
    Availability,
    shared_availability,
)
from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts
from acf.pipelines.agent_service.events import EventProcessor
from acf.pipelines.agent_service.execution import ExecutionFailed
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.agent_service.turn import AgentServiceTurn, Setup
from acf.pipelines.llm.breaker import BreakerSettings, endpoint_key
from acf.ports.pipeline import TurnContext


def agent_service_version(fields: AgentServicePipelineFields) -> str:
    """A content hash of what shapes the agent's answers: its fields."""
    canonical = json.dumps(fields.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def breaker_settings(fields: AgentServicePipelineFields) -> BreakerSettings:
    b = fields.breaker
    return BreakerSettings(b.failures, round(b.window_s * 1000), round(b.open_s * 1000))


class AgentServicePipeline:
    """Implements ``Pipeline``, ``SupersedeHook`` and ``ClosablePipeline`` for one agent.

    ``client``: a client to use instead of the one made from ``fields`` on first use (a
    test's, over its own transport); it is closed with the pipeline all the same.
    ``health_interval_s``: how often the endpoint's ``GET /health`` is polled once a turn
    ran (None: never, the router then goes by the circuit breaker alone)."""

    def __init__(
        self,
        fields: AgentServicePipelineFields,
        *,
        client: AgentServiceClient | None = None,
        availability: Availability | None = None,
        health_interval_s: float | None = HEALTH_INTERVAL_S,
        name: str = "agent_service",
        version: str | None = None,
    ) -> None:
        self.fields = fields
        self.name = name
        self.version = version or agent_service_version(fields)
        self.endpoint = endpoint_key(fields.base_url)
        self._client = client
        self._availability = availability or shared_availability()
        self._health_interval_s = health_interval_s
        self._running: dict[tuple[str, int], EventProcessor] = {}
        self.setup = Setup(
            fields,
            self.endpoint,
            self._get_client,
            self._availability.breaker(fields.base_url, breaker_settings(fields)),
        )

    def _api_key(self) -> str | None:
        """The API key, read from the environment now; raises ``InvalidValue`` when its
        secret is not set."""
        ref = self.fields.api_key
        return None if ref is None else resolve_secrets(ref, what="agent_service")

    def _new_client(self) -> AgentServiceClient:
        """A client of ``fields`` (raises ``InvalidValue`` as ``_api_key``)."""
        t = self.fields.timeouts
        timeouts = ClientTimeouts(t.connect_s, t.first_event_s, t.stream_s)
        return AgentServiceClient(self.fields.base_url, self._api_key(), timeouts)

    async def _get_client(self) -> AgentServiceClient:
        if self._client is None:
            try:
                self._client = self._new_client()
            except InvalidValue as exc:
                raise ExecutionFailed(FailureKind.UNAUTHORIZED, str(exc), 0) from None
        return self._client

    def _watch(self, ctx: TurnContext) -> None:
        """Poll the endpoint's health (once per endpoint and event loop: the
        availability's), when the API key can be read."""
        if self._health_interval_s is None:
            return
        try:
            self._api_key()
        except InvalidValue:
            return  # the turn fails as unauthorized; nothing to poll with
        self._availability.watch(
            self.fields.base_url,
            self._new_client,
            clock=ctx.clock,
            interval_s=self._health_interval_s,
        )

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self._watch(ctx)
        key = _attempt(ctx)
        processor = EventProcessor(ctx, self.fields.show_tool_status)
        self._running[key] = processor
        try:
            return await AgentServiceTurn(self.setup, ctx, processor).run()
        finally:
            if self._running.get(key) is processor:
                del self._running[key]

    def on_new_messages(
        self, ctx: TurnContext, new_messages: Sequence[InboundMessage]
    ) -> SupersedeDecision | None:
        """QUEUE once the running execution started a tool with a side effect; else the
        agent's policy (None)."""
        del new_messages
        processor = self._running.get(_attempt(ctx))
        if processor is not None and processor.side_effect_started:
            return SupersedeDecision.QUEUE
        return None

    async def aclose(self) -> None:
        """Stop the endpoint's health poller (another pipeline of the endpoint starts it
        again on its next turn) and close the client's connections."""
        if self._health_interval_s is not None:
            await self._availability.unwatch(self.fields.base_url)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _attempt(ctx: TurnContext) -> tuple[str, int]:
    return (ctx.correlation.turn_id or "", ctx.attempt)
