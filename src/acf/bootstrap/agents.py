"""Agents from the configuration file: pipelines, tool registries and settings, with
channel policies layered acf's defaults → tenant → agent. Errors name the file and the
path of the field."""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from acf.adapters.tools import declared
from acf.bootstrap.builtin_tools import BuiltinTools
from acf.config.kinds import SETTINGS_DEFAULTS, SETTINGS_DEFAULTS_FOR, pipeline_kind
from acf.config.load import ConfigError, LoadedConfig
from acf.config.model import AgentFields, BuiltinToolFields, ChannelPolicyFields, TenantFields
from acf.config.pipelines import PipelineFields
from acf.config.tools import ToolDeclaration
from acf.domain.agent_settings import AgentSettings
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline
from acf.ports.tool_backend import Tool
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents

GENERIC_WINDOW = ChannelPolicy(AccumulationMode.ADAPTIVE, 1000, 300, 4000, 0)
"""Where a channel that acf leaves OFF (email, voice) starts when configured to accumulate."""


def channel_policy(
    channel: Channel, base: ChannelPolicy, fields: ChannelPolicyFields
) -> ChannelPolicy:
    """``fields`` over ``base``: the fields set win, the others keep ``base``'s values; when
    ``base`` does not accumulate, acf's default for the channel's (or the generic window's,
    for a channel acf leaves off). Without ``mode``, ``base``'s accumulation stays."""
    # Delivery and lifecycle fields (fallback, pacing, idle timeout) apply whatever the
    # accumulation mode.
    fallback = base.fallback if fields.fallback is None else tuple(fields.fallback)
    pacing = base.segment_pacing_ms
    if fields.segment_pacing_ms is not None:
        pacing = fields.segment_pacing_ms
    idle = base.idle_timeout_s if fields.idle_timeout_s is None else fields.idle_timeout_s

    def delivered(policy: ChannelPolicy) -> ChannelPolicy:
        return dataclasses.replace(
            policy, fallback=fallback, segment_pacing_ms=pacing, idle_timeout_s=idle
        )

    delivery = {"fallback", "segment_pacing_ms", "idle_timeout_s"}
    changes = {
        k: v for k, v in fields.model_dump(exclude={"mode", *delivery}).items() if v is not None
    }
    if fields.mode is None:
        if changes and base.mode is AccumulationMode.OFF:
            raise InvalidValue(
                f"{', '.join(sorted(changes))} need a mode: this channel does not accumulate"
            )
        return delivered(dataclasses.replace(base, **changes))
    if fields.mode is AccumulationMode.OFF:
        return delivered(ChannelPolicy(AccumulationMode.OFF))
    start = base
    if start.mode is AccumulationMode.OFF:
        start = DEFAULT_CHANNEL_POLICIES[channel]
    if start.mode is AccumulationMode.OFF:
        start = GENERIC_WINDOW
    return delivered(dataclasses.replace(start, mode=fields.mode, **changes))


def _policies(
    source: str, layers: Mapping[str, Mapping[Channel, ChannelPolicyFields]]
) -> dict[Channel, ChannelPolicy]:
    policies = dict(DEFAULT_CHANNEL_POLICIES)
    for where, layer in layers.items():
        for channel, fields in layer.items():
            try:
                policies[channel] = channel_policy(channel, policies[channel], fields)
            except InvalidValue as exc:
                raise ConfigError(f"{source}: {where}.{channel.value}: {exc}") from None
    return policies


def capabilities(
    source: str, tenant: str, fields: TenantFields
) -> dict[Channel, ChannelCapabilities]:
    """acf's default capabilities with the tenant's overrides. WhatsApp through Twilio
    sends text only (no reply buttons, no typing indicator)."""
    resolved = dict(DEFAULT_CAPABILITIES)
    if fields.twilio is not None and fields.twilio.whatsapp_from:
        resolved[Channel.WHATSAPP] = resolved[Channel.WHATSAPP].with_overrides(
            {"max_buttons": 0, "typing_indicator": False}
        )
    for channel, changes in fields.capabilities.items():
        try:
            resolved[channel] = resolved[channel].with_overrides(
                changes.model_dump(exclude_none=True)
            )
        except InvalidValue as exc:
            raise ConfigError(
                f"{source}: tenants.{tenant}.capabilities.{channel.value}: {exc}"
            ) from None
    return resolved


def _pipeline(
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    fields: PipelineFields,
    registry: ToolRegistry,
    files: object | None,
) -> Pipeline:
    where = f"{loaded.source}: tenants.{tenant}.agents.{agent}.pipeline"
    specs = [tool.spec for name in registry.names() if (tool := registry.get(name)) is not None]
    try:
        return pipeline_kind(fields.kind).build(fields, files, specs, where)
    except InvalidValue as exc:
        raise ConfigError(str(exc)) from None


@dataclass(slots=True)
class ToolBackends:
    """What configured tools run against: an HTTP client (``http`` tools) and the built-in
    tool sets this process offers (``builtin`` tools)."""

    http: httpx.AsyncClient
    builtin: BuiltinTools = field(default_factory=BuiltinTools)


def tenant_tools(
    source: str,
    tenant: str,
    fields: TenantFields,
    backends: ToolBackends,
    sets: dict[str, dict[str, Tool]] | None = None,
) -> dict[str, Tool]:
    """The tenant's tools by name. ``sets``: the built-in tool sets the tenant already has
    (one set of each kind per tenant, shared by its tools and by its configuration
    versions, so a new version keeps the backend's state); sets made here are added."""
    tools: dict[str, Tool] = {}
    http = [t for t in fields.tools if isinstance(t, ToolDeclaration)]
    for tool in declared.build(http, backends.http):
        tools[tool.spec.name] = tool
    sets = {} if sets is None else sets
    for index, tool_fields in enumerate(fields.tools):
        if not isinstance(tool_fields, BuiltinToolFields):
            continue
        where = f"{source}: tenants.{tenant}.tools.{index}"
        if tool_fields.builtin not in sets:
            made = backends.builtin.make(tool_fields.builtin)
            if made is None:
                raise ConfigError(
                    f"{where}.builtin: no builtin tools {tool_fields.builtin!r} in this "
                    f"process; it offers {backends.builtin.names()}"
                )
            sets[tool_fields.builtin] = made
        builtin = sets[tool_fields.builtin]
        if tool_fields.name not in builtin:
            raise ConfigError(
                f"{where}.name: no builtin tool {tool_fields.name!r}; the "
                f"{tool_fields.builtin} backend has {sorted(builtin)}"
            )
        tools[tool_fields.name] = builtin[tool_fields.name]
    return tools


def agent_binding(
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    fields: AgentFields,
    tools: Mapping[str, Tool],
    files: object | None = None,
) -> AgentBinding:
    """One agent's binding from its resolved ``fields`` (an agent's, a scenario step's or
    an overridden one); ``files``: what its pipeline kind loaded (default: the agent's)."""
    source = loaded.source
    tenant_fields = loaded.config.tenants[tenant]
    layers = {
        f"tenants.{tenant}.channels": tenant_fields.channels,
        f"tenants.{tenant}.agents.{agent}.channels": fields.channels,
    }
    kind = pipeline_kind(fields.pipeline.kind)
    per_fields = getattr(kind, SETTINGS_DEFAULTS_FOR, None)
    kind_defaults = (
        per_fields(fields.pipeline) if per_fields else getattr(kind, SETTINGS_DEFAULTS, {})
    )
    overrides = {**kind_defaults, **fields.settings.model_dump(exclude_none=True)}
    try:
        settings = AgentSettings(
            **overrides,
            channel_policies=_policies(source, layers),
            capabilities=capabilities(source, tenant, tenant_fields),
        )
    except InvalidValue as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: tenants.{tenant}.agents.{agent}.settings: {exc}") from None
    registry = ToolRegistry(tools[name] for name in fields.tools)
    if files is None:
        files = loaded.pipeline_files.get((tenant, agent))
    pipeline = _pipeline(loaded, tenant, agent, fields.pipeline, registry, files)
    return AgentBinding(pipeline, settings, registry)


def tenant_bindings(
    loaded: LoadedConfig,
    tenant: str,
    backends: ToolBackends,
    sets: dict[str, dict[str, Tool]] | None = None,
) -> tuple[dict[str, AgentBinding], dict[str, Tool]]:
    """The tenant's agents' bindings, and its tools (for its variants)."""
    tenant_fields = loaded.config.tenants[tenant]
    tools = tenant_tools(loaded.source, tenant, tenant_fields, backends, sets)
    agents = {
        agent: agent_binding(loaded, tenant, agent, fields, tools)
        for agent, fields in tenant_fields.agents.items()
    }
    return agents, tools


def build_agents(
    loaded: LoadedConfig,
    backends: ToolBackends,
    sets: dict[str, dict[str, dict[str, Tool]]] | None = None,
) -> Agents:
    """Every tenant's agents, ready for the runtime; raises ``ConfigError``. ``sets``:
    per tenant, its built-in tool sets (filled here; kept for its later versions)."""
    sets = {} if sets is None else sets
    bindings = {
        tenant: tenant_bindings(loaded, tenant, backends, sets.setdefault(tenant, {}))[0]
        for tenant in loaded.config.tenants
    }
    return Agents(bindings)
