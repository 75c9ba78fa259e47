"""What a loaded configuration says about one agent, layer by layer (DESIGN §17): each
resolved value with the layer and source that set it (``explain``, the merge log), the
conflicts between layers, the fields of a scenario's step (``step_fields``) and a session's
runtime override (``override_fields``). Pure: reads a ``LoadedConfig``.

A value that no layer sets comes from acf: ``AgentSettings``' defaults (with the defaults
the pipeline's kind asks for, such as an LLM's longer history), ``DEFAULT_CHANNEL_POLICIES``,
or the field's own default; ``explain`` shows it with the layer ``default``.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from acf.config.errors import ConfigError
from acf.config.kinds import SETTINGS_DEFAULTS, SETTINGS_DEFAULTS_FOR, pipeline_kind
from acf.config.load import LoadedConfig, field_path
from acf.config.merge import Conflict, Layer, Merged, Origin, flatten, merge_layers
from acf.config.model import AgentFields, ChannelPolicyFields, SettingsFields
from acf.config.resolve import StepResolution, problems
from acf.domain.agent_settings import AgentSettings
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES

__all__ = [
    "ExplainRow",
    "agent_merge",
    "conflicts",
    "default_values",
    "explain",
    "override_fields",
    "provenance",
    "step_fields",
    "step_files",
]


@dataclass(frozen=True, slots=True)
class ExplainRow:
    """One resolved value of an agent: its dotted key (``settings.deadline_ms``), the value,
    and the layer and source that set it."""

    key: str
    value: Any
    layer: str
    source: str


def _agent(loaded: LoadedConfig, tenant: str, agent: str) -> AgentFields:
    tenant_fields = loaded.config.tenants.get(tenant)
    if tenant_fields is None:
        raise ConfigError(f"no tenant {tenant!r}; expected one of {sorted(loaded.config.tenants)}")
    fields = tenant_fields.agents.get(agent)
    if fields is None:
        raise ConfigError(
            f"tenant {tenant!r} has no agent {agent!r}; expected one of "
            f"{sorted(tenant_fields.agents)}"
        )
    return fields


def agent_merge(loaded: LoadedConfig, tenant: str, agent: str) -> Merged:
    """The agent's merge (base → tenant → agent) with its log."""
    _agent(loaded, tenant, agent)
    resolution = loaded.resolutions.get(tenant)
    merged = None if resolution is None else resolution.agents.get(agent)
    return merged if merged is not None else Merged()


def _step(
    loaded: LoadedConfig, tenant: str, agent: str, scenario: str, step: str | None
) -> StepResolution:
    fields = _agent(loaded, tenant, agent)
    declared = fields.scenarios.get(scenario)
    if declared is None:
        raise ConfigError(
            f"agent {tenant}/{agent} has no scenario {scenario!r}; expected one of "
            f"{sorted(fields.scenarios)}"
        )
    if step is not None and step not in declared.steps:
        raise ConfigError(
            f"scenario {scenario!r} of {tenant}/{agent} has no step {step!r}; expected one "
            f"of {sorted(declared.steps)}"
        )
    return loaded.resolutions[tenant].steps[(agent, scenario, step)]


def step_fields(
    loaded: LoadedConfig, tenant: str, agent: str, scenario: str, step: str | None
) -> AgentFields:
    """The agent's fields resolved down to ``scenario`` and ``step`` (None: the scenario's
    own layer only), validated when the configuration loaded. Raises ``ConfigError`` for
    an unknown tenant, agent, scenario or step."""
    return _step(loaded, tenant, agent, scenario, step).fields


def step_files(
    loaded: LoadedConfig, tenant: str, agent: str, scenario: str, step: str | None
) -> object | None:
    """What the step's pipeline kind loaded (its ``build``'s ``files``): the agent's own
    when the step leaves the pipeline as it is."""
    return _step(loaded, tenant, agent, scenario, step).files


def _flat_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys, whether given dotted (``{"settings.deadline_ms": 5}``) or nested."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and value:
            for inner, leaf in _flat_overrides(value).items():
                flat[f"{key}.{inner}"] = leaf
        else:
            flat[str(key)] = value
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested mappings; ``ConfigError`` naming a key that sets a value where
    another key needs a mapping (``settings.deadline_ms`` and ``settings.deadline_ms.x``)."""
    out: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        node = out
        *parents, last = key.split(".")
        for index, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                taken = ".".join(parents[: index + 1])
                raise ConfigError(
                    f"runtime override: {key}: {taken} is set to a value by another key, "
                    "so nothing can be set inside it"
                )
            node = child
        value = flat[key]
        node[last] = dict(value) if isinstance(value, dict) else value
    return out


def _override_merge(
    fields: AgentFields, overridable: list[str], overrides: Mapping[str, Any]
) -> Merged:
    flat = _flat_overrides(overrides)
    refused = sorted(
        key
        for key in flat
        if not any(key == allowed or key.startswith(allowed + ".") for allowed in overridable)
    )
    if refused:
        raise ConfigError(
            f"runtime override: {', '.join(refused)} not overridable; this agent allows "
            f"{sorted(overridable) or 'none'}"
        )
    tools = flat.get("tools")
    if tools is not None:
        wider = sorted(set(map(str, tools)) - set(fields.tools)) if isinstance(tools, list) else []
        if wider:
            raise ConfigError(
                f"runtime override: tools {wider} are not in the agent's allowlist "
                f"{fields.tools}: an allowlist may only narrow"
            )
    start = Merged(fields.model_dump(mode="json", exclude_unset=True))
    return merge_layers([Layer("override", "runtime override", _nest(flat))], start)


def override_fields(
    agent_fields: AgentFields, overridable: list[str], overrides: Mapping[str, Any]
) -> AgentFields:
    """``agent_fields`` with a session's runtime ``overrides`` (dotted keys or nested
    mappings) applied. Raises ``ConfigError`` naming each key not under one of
    ``overridable``, a widened tool allowlist, or a value that does not validate."""
    if not overrides:
        return agent_fields
    merged = _override_merge(agent_fields, overridable, overrides)
    try:
        return AgentFields.model_validate(merged.body)
    except ValidationError as exc:
        raise ConfigError(f"runtime override: {'; '.join(problems(exc, field_path))}") from None


def default_values(fields: AgentFields) -> dict[str, Origin]:
    """What acf gives an agent's settings and channel policies that no layer sets:
    ``AgentSettings``' defaults (over which the defaults its pipeline's kind asks for) and
    ``DEFAULT_CHANNEL_POLICIES``; by dotted key, layer ``default``, values as JSON."""
    kind = pipeline_kind(fields.pipeline.kind)
    per_fields = getattr(kind, SETTINGS_DEFAULTS_FOR, None)
    kind_defaults: Mapping[str, Any] = (
        per_fields(fields.pipeline) if per_fields else getattr(kind, SETTINGS_DEFAULTS, {})
    )
    settings = AgentSettings(**kind_defaults)
    out: dict[str, Origin] = {}
    for name in SettingsFields.model_fields:
        source = f"acf: the {fields.pipeline.kind} kind" if name in kind_defaults else "acf"
        out[f"settings.{name}"] = Origin("default", source, _json(getattr(settings, name)))
    for channel, policy in DEFAULT_CHANNEL_POLICIES.items():
        values = dataclasses.asdict(policy)
        for name in ChannelPolicyFields.model_fields:
            if name in values:
                key = f"channels.{channel.value}.{name}"
                out[key] = Origin("default", "acf", _json(values[name]))
    return out


def _json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return getattr(value, "value", value)


def _rows(fields: AgentFields, merged: Merged) -> list[ExplainRow]:
    resolved = flatten(fields.model_dump(mode="json"))
    defaults = default_values(fields)
    rows = []
    for key in sorted(set(defaults) | set(resolved)):
        origin = merged.log.get(key)
        value = resolved.get(key)
        if origin is None and value is None and key in defaults:
            origin = defaults[key]
            value = origin.value
        elif origin is None:
            origin = Origin("default", "acf", value)
        rows.append(ExplainRow(key, value, origin.layer, origin.source))
    return rows


def explain(
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    key: str | None = None,
    *,
    scenario: str | None = None,
    step: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[ExplainRow]:
    """Each resolved value of the agent (down to ``scenario``/``step`` and a runtime
    ``overrides`` when given) with the layer and source that set it, sorted by key; only
    ``key`` and the keys under it when given (``settings``, ``settings.deadline_ms``; an
    ``agents.<agent>.`` prefix is accepted). Raises ``ConfigError`` for an unknown
    tenant, agent, scenario or step, or a key the agent does not have."""
    fields = _agent(loaded, tenant, agent)
    merged = agent_merge(loaded, tenant, agent)
    if scenario is not None:
        resolution = _step(loaded, tenant, agent, scenario, step)
        fields, merged = resolution.fields, resolution.merged
    if overrides:
        override = _override_merge(fields, fields.overridable, overrides)
        fields = override_fields(fields, fields.overridable, overrides)
        merged = Merged(override.body, {**merged.log, **_override_log(override)})
    rows = _rows(fields, merged)
    if key is None:
        return rows
    wanted = key.removeprefix(f"agents.{agent}.")
    picked = [r for r in rows if r.key == wanted or r.key.startswith(wanted + ".")]
    if not picked:
        raise ConfigError(f"agent {tenant}/{agent} has no key {wanted!r}")
    return picked


def _override_log(merged: Merged) -> dict[str, Origin]:
    return {k: o for k, o in merged.log.items() if o.layer == "override"}


def conflicts(
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    scenario: str | None = None,
    step: str | None = None,
) -> list[Conflict]:
    """Values a layer sets that a more specific layer sets differently (the more specific
    one wins), for the agent or one of its scenario steps."""
    if scenario is not None:
        return list(_step(loaded, tenant, agent, scenario, step).merged.conflicts)
    return list(agent_merge(loaded, tenant, agent).conflicts)


def provenance(loaded: LoadedConfig, tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's merge log, as a version stores it: each resolved value's dotted key
    (``agents.support.settings.deadline_ms``, ``limits.accepted_messages``) →
    ``{"layer", "source", "value"}``. Tenant-wide keys are the tenant's (or acf's default
    when the file does not set them)."""
    tenant_fields = loaded.config.tenants[tenant]
    written = loaded.document.get("tenants", {}).get(tenant, {})
    where = f"{loaded.label}: tenants.{tenant}"
    out: dict[str, dict[str, Any]] = {}
    tenant_json = tenant_fields.model_dump(mode="json", exclude={"agents"})
    written_keys = flatten({k: v for k, v in written.items() if k != "agents"})
    for key, value in flatten(tenant_json).items():
        by_tenant = key in written_keys or any(w.startswith(key + ".") for w in written_keys)
        by_tenant = by_tenant or any(key.startswith(w + ".") for w in written_keys)
        layer, source = ("tenant", where) if by_tenant else ("default", "acf")
        out[key] = {"layer": layer, "source": source, "value": value}
    for agent in tenant_fields.agents:
        for row in explain(loaded, tenant, agent):
            out[f"agents.{agent}.{row.key}"] = {
                "layer": row.layer,
                "source": row.source,
                "value": row.value,
            }
    return out
