"""Each agent of a configuration resolved from its layers (``acf.config.merge``): its base
agent (a file of its own, ``bases``), its tenant's ``channels`` and ``agent_defaults``, and
its own fields; then each of its scenarios and their steps over it. Works on the YAML
mappings as written, before validation; the result is validated by ``acf.config.load``.

Every path a configuration names (base files, rules files, prompt files, in bases too) is
relative to the configuration file.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acf.config.errors import ConfigError
from acf.config.merge import LAYERS, Layer, Merged, Origin, merge_layers
from acf.config.model import AgentFields

StepKey = tuple[str, str, str | None]
"""(agent, scenario, step); a step of None is the scenario's own layer alone."""


@dataclass(frozen=True, slots=True)
class BaseFile:
    """A base agent: its name, its path as written under ``bases``, its fields as written."""

    name: str
    path: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StepResolution:
    """A scenario step's resolved agent fields, their merge log, and what its pipeline's
    kind loaded (the agent's own when the step leaves the pipeline as it is)."""

    fields: AgentFields
    merged: Merged
    files: object | None


@dataclass(frozen=True, slots=True)
class TenantResolution:
    """How a tenant's agents were resolved: each agent's merge (base → tenant → agent), its
    scenarios' steps, the bases used and the text of every file read for the tenant."""

    agents: Mapping[str, Merged] = field(default_factory=dict)
    steps: Mapping[StepKey, StepResolution] = field(default_factory=dict)
    bases: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)


def problems(exc: ValidationError, path: Callable[[tuple[int | str, ...]], str]) -> list[str]:
    return [f"{path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]


def read_bases(
    body: Mapping[str, Any], source: str, base_dir: Path, path: Callable[[Any], str]
) -> dict[str, BaseFile]:
    """The base agents ``body`` declares, read and each checked as one agent's fields."""
    declared = body.get("bases")
    if not isinstance(declared, Mapping):
        return {}  # absent, or not a mapping: the model says what is wrong
    bases: dict[str, BaseFile] = {}
    for name, written in declared.items():
        if not isinstance(written, str):
            continue
        file = Path(written) if Path(written).is_absolute() else base_dir / written
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{source}: bases.{name}: cannot read {written}: {exc.strerror or exc}"
            ) from None
        try:
            fields = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{written}: invalid YAML: {exc}") from None
        if not isinstance(fields, Mapping):
            raise ConfigError(f"{written}: expected one agent's fields, a mapping")
        try:
            AgentFields.model_validate(fields)
        except ValidationError as exc:
            raise ConfigError(f"{written}: {'; '.join(problems(exc, path))}") from None
        bases[str(name)] = BaseFile(str(name), written, fields)
    return bases


def agent_layers(
    label: str,
    tenant: str,
    agent: str,
    tenant_body: Mapping[str, Any],
    agent_body: Mapping[str, Any],
    bases: Mapping[str, BaseFile],
) -> list[Layer]:
    """The layers of one agent below its scenarios: base, tenant, agent."""
    layers: list[Layer] = []
    base = agent_body.get("base")
    if base is not None:
        if base not in bases:
            raise ConfigError(
                f"{label}: tenants.{tenant}.agents.{agent}.base: {base!r} is not one of "
                f"the bases {sorted(bases)}"
            )
        layers.append(Layer("base", bases[base].path, bases[base].body))
    channels = tenant_body.get("channels")
    if isinstance(channels, Mapping) and channels:
        layers.append(
            Layer("tenant", f"{label}: tenants.{tenant}.channels", {"channels": channels})
        )
    defaults = tenant_body.get("agent_defaults")
    if isinstance(defaults, Mapping) and defaults:
        layers.append(Layer("tenant", f"{label}: tenants.{tenant}.agent_defaults", defaults))
    layers.append(Layer("agent", f"{label}: tenants.{tenant}.agents.{agent}", agent_body))
    return layers


def resolve_agents(
    body: Mapping[str, Any], label: str, bases: Mapping[str, BaseFile]
) -> tuple[dict[str, Any], dict[str, dict[str, Merged]]]:
    """``body`` with each agent replaced by its merged layers, and each agent's merge.
    Parts that are not mappings are left as they are, for the model to name."""
    resolved = dict(body)
    merges: dict[str, dict[str, Merged]] = {}
    tenants = body.get("tenants")
    if not isinstance(tenants, Mapping):
        return resolved, merges
    out_tenants: dict[str, Any] = {}
    for tenant, tenant_body in tenants.items():
        agents = tenant_body.get("agents") if isinstance(tenant_body, Mapping) else None
        if not isinstance(tenant_body, Mapping) or not isinstance(agents, Mapping):
            out_tenants[tenant] = tenant_body
            continue
        out_agents: dict[str, Any] = {}
        merges[tenant] = {}
        for agent, agent_body in agents.items():
            if not isinstance(agent_body, Mapping):
                out_agents[agent] = agent_body
                continue
            layers = agent_layers(label, tenant, agent, tenant_body, agent_body, bases)
            merged = merge_layers(layers)
            merges[tenant][agent] = merged
            out_agents[agent] = merged.body
        out_tenants[tenant] = {**tenant_body, "agents": out_agents}
    resolved["tenants"] = out_tenants
    return resolved, merges


def _written_by(value: Any, prefix: str, log: Mapping[str, Origin], source: str) -> Any:
    """The part of ``value`` (the mapping at dotted ``prefix``) whose leaves ``log`` says
    ``source`` wrote; None when none."""
    if isinstance(value, Mapping) and value:
        kept = {}
        for key, item in value.items():
            part = _written_by(item, f"{prefix}.{key}", log, source)
            if part is not None:
                kept[key] = part
        return kept or None
    origin = log.get(prefix)
    return value if origin is not None and origin.source == source else None


def _layers_of(
    name: str, body: Mapping[str, Any], prefix: str, log: Mapping[str, Origin]
) -> list[Layer]:
    """A scenario's or step's layer, split by the source that wrote each of its values
    (a base's scenario, completed by the overlay), least specific first."""
    sources = {
        origin.source: LAYERS.index(origin.layer)
        for key, origin in log.items()
        if key.startswith(prefix + ".")
    }
    layers = []
    for source in sorted(sources, key=lambda s: sources[s]):
        part = _written_by(body, prefix, log, source)
        if part:
            at = f"{source}.{prefix}" if ": " in source else f"{source}: {prefix}"
            layers.append(Layer(name, at, part))
    return layers


def step_layers(agent: Merged, scenario: str, step: str | None) -> list[Layer]:
    """The scenario's layer (without its steps) and the step's, from the agent's merge."""
    scenarios = agent.body.get("scenarios") or {}
    body = scenarios.get(scenario)
    if not isinstance(body, Mapping):
        return []
    own = {k: v for k, v in body.items() if k != "steps"}
    layers = _layers_of("scenario", own, f"scenarios.{scenario}", agent.log)
    if step is not None:
        steps = body.get("steps") or {}
        step_body = steps.get(step) if isinstance(steps, Mapping) else None
        if isinstance(step_body, Mapping):
            prefix = f"scenarios.{scenario}.steps.{step}"
            layers += _layers_of("step", step_body, prefix, agent.log)
    return layers


def merge_step(agent: Merged, scenario: str, step: str | None) -> Merged:
    """The agent's merge continued with a scenario and a step; the result has no
    ``scenarios`` of its own, and its allowlist can only narrow the agent's (acf's default
    one, no tools, when no layer set it)."""
    log = {k: o for k, o in agent.log.items() if not k.startswith("scenarios.")}
    log.setdefault("tools", Origin("default", "acf", []))
    body = {k: v for k, v in agent.body.items() if k != "scenarios"}
    start = Merged(
        body, log, tuple(c for c in agent.conflicts if not c.key.startswith("scenarios."))
    )
    merged = merge_layers(step_layers(agent, scenario, step), start)
    if merged.log.get("tools") == Origin("default", "acf", []) and "tools" not in agent.log:
        del merged.log["tools"]
    return merged
