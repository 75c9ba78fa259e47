"""The composition root: settings in, wired components out. No I/O at import."""

import asyncio
import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from opentelemetry.trace import TracerProvider

from acf.adapters.channels.routing import RoutingSender
from acf.adapters.channels.web import WebChannelSender
from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.directory import StaticDirectory
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.adapters.sqlite.database import Durability
from acf.adapters.sqlite.store import DATABASE_FILE, SqliteStore, open_sqlite_store
from acf.adapters.tools import declared
from acf.config.load import LoadedConfig
from acf.config.model import (
    BuiltinToolFields,
    ChannelPolicyFields,
    PythonPipelineFields,
    TenantFields,
)
from acf.config.tools import ToolDeclaration
from acf.demo.commerce import CommerceBackend, commerce_tools
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.observability.metrics import FabricMetrics
from acf.observability.tracing import PhaseSpans
from acf.pipelines.rules import RulesPipeline
from acf.pipelines.rules_model import check_tools
from acf.ports.clock import Clock
from acf.ports.pipeline import Pipeline
from acf.ports.tool_backend import Tool
from acf.service.agents import AgentBinding, Agents
from acf.service.event_feed import EventFeed, Listener, ObservedUnitOfWork
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.service.tool_gateway import ToolRegistry


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILE


@dataclass(slots=True)
class Embedded:
    """The embedded backend, wired: store, wake-ups and ingress over one SQLite file."""

    store: SqliteStore
    wakeups: InProcessWakeUps
    ingress: Ingress
    clock: Clock

    async def close(self) -> None:
        await self.store.close()


async def open_embedded(
    data_dir: Path,
    agents_by_tenant: Mapping[str, Iterable[str]],
    clock: Clock | None = None,
    durability: Durability = Durability.FULL,
) -> Embedded:
    clock = clock or SystemClock()
    store = await open_sqlite_store(database_path(data_dir), clock, durability)
    wakeups = InProcessWakeUps()
    ingress = Ingress(StaticDirectory(agents_by_tenant), store.uow, wakeups, clock)
    return Embedded(store, wakeups, ingress, clock)


# -- agents from the configuration file ------------------------------------------------------


def channel_policy(base: ChannelPolicy, fields: ChannelPolicyFields) -> ChannelPolicy:
    """``fields`` over ``base``: set fields win; a mode change starts from that mode."""
    if fields.mode is AccumulationMode.OFF:
        return ChannelPolicy(AccumulationMode.OFF)
    start = base if base.mode is not AccumulationMode.OFF else ChannelPolicy(fields.mode, 0, 0, 0)
    changes = {k: v for k, v in fields.model_dump(exclude={"mode"}).items() if v is not None}
    try:
        return dataclasses.replace(start, mode=fields.mode, **changes)
    except InvalidValue as exc:
        raise InvalidValue(f"channel policy: {exc}") from None


def _policies(*layers: Mapping[Channel, ChannelPolicyFields]) -> dict[Channel, ChannelPolicy]:
    policies = dict(DEFAULT_CHANNEL_POLICIES)
    for layer in layers:
        for channel, fields in layer.items():
            policies[channel] = channel_policy(policies[channel], fields)
    return policies


def _pipeline(
    loaded: LoadedConfig, tenant: str, agent: str, fields: object, registry: ToolRegistry
) -> Pipeline:
    if isinstance(fields, PythonPipelineFields):
        module_name, _, attribute = fields.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise InvalidValue(
                f"{loaded.source}: tenants.{tenant}.agents.{agent}.pipeline.factory: {exc}"
            ) from None
        pipeline = factory(**fields.options)
        if not isinstance(pipeline, Pipeline):
            raise InvalidValue(f"{fields.factory} did not return a Pipeline")
        return pipeline
    rules = loaded.rules[(tenant, agent)]
    specs = [tool.spec for name in registry.names() if (tool := registry.get(name)) is not None]
    check_tools(rules, specs, f"{loaded.source}: tenants.{tenant}.agents.{agent}")
    return RulesPipeline(rules)


@dataclass(slots=True)
class ToolBackends:
    """What declared tools run against: an HTTP client, the demo's commerce backend."""

    http: httpx.AsyncClient
    commerce: CommerceBackend = field(default_factory=CommerceBackend)


def _tenant_tools(tenant: TenantFields, backends: ToolBackends) -> dict[str, Tool]:
    builtin = {tool.spec.name: tool for tool in commerce_tools(backends.commerce)}
    tools: dict[str, Tool] = {}
    http = [t for t in tenant.tools if isinstance(t, ToolDeclaration)]
    for tool in declared.build(http, backends.http):
        tools[tool.spec.name] = tool
    for fields in tenant.tools:
        if isinstance(fields, BuiltinToolFields):
            if fields.name not in builtin:
                raise InvalidValue(
                    f"builtin tool {fields.name!r} does not exist; the commerce backend has "
                    f"{sorted(builtin)}"
                )
            tools[fields.name] = builtin[fields.name]
    return tools


def build_agents(loaded: LoadedConfig, backends: ToolBackends) -> Agents:
    bindings = {}
    for tenant, tenant_fields in loaded.config.tenants.items():
        tools = _tenant_tools(tenant_fields, backends)
        agents = {}
        for agent, fields in tenant_fields.agents.items():
            overrides = fields.settings.model_dump(exclude_none=True)
            settings = AgentSettings(
                **overrides, channel_policies=_policies(tenant_fields.channels, fields.channels)
            )
            registry = ToolRegistry(tools[name] for name in fields.tools)
            agents[agent] = AgentBinding(
                _pipeline(loaded, tenant, agent, fields.pipeline, registry), settings, registry
            )
        bindings[tenant] = agents
    return Agents(bindings)


# -- the service: what `acf serve` runs -------------------------------------------------------


@dataclass(slots=True)
class Service:
    """Everything `acf serve` runs, over one data directory."""

    loaded: LoadedConfig
    store: SqliteStore
    agents: Agents
    ingress: Ingress
    runtime: Runtime
    api_keys: SqliteApiKeys
    metrics: FabricMetrics
    feed: EventFeed
    backends: ToolBackends
    clock: Clock

    async def start(self) -> None:
        await self.runtime.start()

    async def close(self) -> None:
        await self.runtime.stop()
        await self.store.close()
        await self.backends.http.aclose()


async def open_service(
    loaded: LoadedConfig,
    data_dir: Path,
    clock: Clock | None = None,
    durability: Durability = Durability.FULL,
    tracing: TracerProvider | None = None,
) -> Service:
    """Open the embedded database in ``data_dir`` (created on first run) and wire the
    runtime, ingress and what the HTTP API needs. Call ``start()`` to begin work.
    With ``tracing``, every turn's phases become OpenTelemetry spans."""
    clock = clock or SystemClock()
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    backends = ToolBackends(httpx.AsyncClient(timeout=httpx.Timeout(30.0)))
    agents = build_agents(loaded, backends)
    store = await open_sqlite_store(database_path(data_dir), clock, durability)
    metrics = FabricMetrics()
    feed = EventFeed()
    listeners: list[Listener] = [metrics.observe, feed]
    if tracing is not None:
        listeners.append(PhaseSpans(tracing).observe)
    store.uow = ObservedUnitOfWork(store.uow, listeners)
    wakeups = InProcessWakeUps()
    ingress = Ingress(agents, store.uow, wakeups, clock)
    sender = RoutingSender({Channel.WEB: WebChannelSender()})
    runtime = Runtime(store, clock, agents, wakeups, sender)
    keys = SqliteApiKeys(database_path(data_dir))
    return Service(loaded, store, agents, ingress, runtime, keys, metrics, feed, backends, clock)
