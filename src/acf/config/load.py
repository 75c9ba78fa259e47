"""Load and check a configuration file: YAML in, a validated ``LoadedConfig`` out.

Every error names the file, the path of the field and what was expected, e.g.
``acf.yaml: tenants.demo.agents.support.settings.deadline_ms: Input should be greater
than 0``. The files a pipeline names are loaded and checked too, by its kind
(``acf.config.kinds``; their errors name their own file). Each agent is first resolved
from its layers (a base agent's file, the tenant's ``channels`` and ``agent_defaults``, its
own fields: ``acf.config.resolve``), its scenarios' steps too. Secrets stay references:
``missing_secrets`` lists the ``${NAME}`` references that the environment does not define
now (a warning: they are read at call time).
"""

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acf.config.errors import ConfigError
from acf.config.kinds import KIND_MODULES, AgentSite, LoadedFiles, SiteAwareKind, pipeline_kind
from acf.config.merge import Merged
from acf.config.model import AcfConfig, AgentFields, TenantFields
from acf.config.resolve import (
    BaseFile,
    StepKey,
    StepResolution,
    TenantResolution,
    merge_step,
    problems,
    read_bases,
    resolve_agents,
)
from acf.config.secrets import SECRET_REF
from acf.domain.errors import InvalidValue

__all__ = ["ConfigError", "LoadedConfig", "field_path", "load_config", "parse_config"]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: AcfConfig
    """The validated configuration, each agent resolved from its layers."""
    source: str
    version: str
    """A content hash of the file and the files it names (for a stored version, loaded by
    ``acf.config.versions_source.load_version``: the version's content hash)."""
    pipeline_files: Mapping[tuple[str, str], object] = field(default_factory=dict)
    """What each (tenant, agent)'s pipeline kind loaded from the files it names (a rules
    pipeline: its ``RulesConfig``), for the kind's ``build`` (``acf.config.kinds``)."""
    document: Mapping[str, Any] = field(default_factory=dict)
    """The YAML document as written (agents as overlays, secrets as references)."""
    base_dir: Path | None = None
    """The folder the paths it names are relative to."""
    bases: Mapping[str, BaseFile] = field(default_factory=dict)
    resolutions: Mapping[str, TenantResolution] = field(default_factory=dict)
    """Per tenant: each agent's merge log, its scenarios' steps, the files read."""

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        env = os.environ if environ is None else environ
        text = self.config.model_dump_json()
        return sorted({name for name in SECRET_REF.findall(text) if name not in env})

    @property
    def label(self) -> str:
        """The file's name, as merge logs name it (``acf.yaml``)."""
        return Path(self.source).name


# Pydantic puts a union member's tag in the error's path; the file has no such level.
_TAGS = {"pipeline": set(KIND_MODULES), "tools": {"builtin", "http"}}


def field_path(loc: tuple[int | str, ...]) -> str:
    """The dotted path of a field in the file, without pydantic's union tags."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        owner = loc[index - 1] if index else None
        if isinstance(owner, int) and index >= 2:
            owner = loc[index - 2]
        if (
            isinstance(owner, str)
            and str(part) in _TAGS.get(owner, ())
            and (owner == "pipeline" or isinstance(loc[index - 1], int))
        ):
            continue
        if index >= 2 and loc[index - 2] == "routes" and str(part) in _TAGS["pipeline"]:
            continue  # a router's route: routes.<name>.<kind tag>
        parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _problems(exc: ValidationError) -> str:
    return "; ".join(problems(exc, field_path))


def _check_overlays(
    source: str, body: Mapping[str, Any], merges: Mapping[str, Mapping[str, Merged]]
) -> None:
    """An agent over a base must validate merged; else it is refused naming the keys."""
    for tenant, agents in merges.items():
        for agent, merged in agents.items():
            base = merged.body.get("base")
            if base is None:
                continue
            try:
                AgentFields.model_validate(merged.body)
            except ValidationError as exc:
                keys = sorted({field_path(tuple(e["loc"])) for e in exc.errors()})
                path = body.get("bases", {}).get(base)
                raise ConfigError(
                    f"{source}: tenants.{tenant}.agents.{agent}: the overlay is incompatible "
                    f"with base {base} ({path}): {', '.join(keys)} ({_problems(exc)})"
                ) from None


def _load_kind(fields: Any, where: str, base_dir: Path, site: AgentSite) -> LoadedFiles | None:
    try:
        kind = pipeline_kind(fields.kind)
        if isinstance(kind, SiteAwareKind):
            return kind.load_at(fields, where, base_dir, site)
        return kind.load(fields, where, base_dir)
    except InvalidValue as exc:  # a kind's files' errors name their file and field
        raise ConfigError(str(exc)) from None


def _resolve_steps(
    source: str,
    tenant: str,
    fields: TenantFields,
    merges: Mapping[str, Merged],
    loaded_files: Mapping[str, LoadedFiles | None],
    base_dir: Path,
    files: dict[str, str],
    digest: "hashlib._Hash",
) -> dict[StepKey, StepResolution]:
    """Every scenario (alone) and step of the tenant's agents, merged, validated and its
    pipeline's files loaded when it changes the pipeline."""
    steps: dict[StepKey, StepResolution] = {}
    declared = {t.name for t in fields.tools}
    for agent, agent_fields in fields.agents.items():
        merged_agent = merges.get(agent)
        if merged_agent is None:
            continue
        for scenario, scenario_fields in agent_fields.scenarios.items():
            for step in (None, *scenario_fields.steps):
                where = f"tenants.{tenant}.agents.{agent}.scenarios.{scenario}"
                where += "" if step is None else f".steps.{step}"
                merged = merge_step(merged_agent, scenario, step)
                try:
                    resolved = AgentFields.model_validate(merged.body)
                except ValidationError as exc:
                    raise ConfigError(f"{source}: {where}: {_problems(exc)}") from None
                unknown = sorted(set(resolved.tools) - declared)
                if unknown:
                    raise ConfigError(
                        f"{source}: {where}.tools: {unknown} are not declared by the tenant"
                    )
                own = loaded_files.get(agent)
                if resolved.pipeline == agent_fields.pipeline:
                    loaded = own
                else:
                    site = AgentSite(tenant, agent, fields.display_name)
                    loaded = _load_kind(
                        resolved.pipeline, f"{source}: {where}.pipeline", base_dir, site
                    )
                    if loaded is not None:
                        files.update(loaded.files)
                        digest.update(loaded.content)
                value = None if loaded is None else loaded.value
                steps[(agent, scenario, step)] = StepResolution(resolved, merged, value)
    return steps


def parse_config(body: Any, source: str, base_dir: Path | None = None) -> LoadedConfig:
    """Validate a parsed YAML document; ``base_dir`` resolves the relative paths it names
    (base agents, rules and prompt files). Each agent is resolved from its layers first
    (``acf.config.resolve``); an overlay that no longer fits its base is refused naming the
    keys."""
    if not isinstance(body, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(body).__name__}"
        )
    base = base_dir or Path.cwd()
    label = Path(source).name
    bases = read_bases(body, source, base, field_path)
    resolved_body, merges = resolve_agents(body, label, bases)
    _check_overlays(source, body, merges)
    try:
        config = AcfConfig.model_validate(resolved_body)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_problems(exc)}") from None
    digest = hashlib.sha256(yaml.safe_dump(body, sort_keys=True).encode("utf-8"))
    for name in sorted(bases):
        digest.update(yaml.safe_dump(dict(bases[name].body), sort_keys=True).encode("utf-8"))
    pipeline_files: dict[tuple[str, str], object] = {}
    resolutions: dict[str, TenantResolution] = {}
    for tenant, tenant_fields in config.tenants.items():
        tenant_files: dict[str, str] = {}
        loaded_by_agent: dict[str, LoadedFiles | None] = {}
        for agent, agent_fields in tenant_fields.agents.items():
            where = f"{source}: tenants.{tenant}.agents.{agent}.pipeline"
            site = AgentSite(tenant, agent, tenant_fields.display_name)
            loaded = _load_kind(agent_fields.pipeline, where, base, site)
            loaded_by_agent[agent] = loaded
            if loaded is not None:
                pipeline_files[(tenant, agent)] = loaded.value
                digest.update(loaded.content)
                tenant_files.update(loaded.files)
        agent_merges = merges.get(tenant, {})
        steps = _resolve_steps(
            source, tenant, tenant_fields, agent_merges, loaded_by_agent, base, tenant_files, digest
        )
        used = tuple(sorted({a.base for a in tenant_fields.agents.values() if a.base}))
        resolutions[tenant] = TenantResolution(agent_merges, steps, used, tenant_files)
    return LoadedConfig(
        config,
        source,
        "sha256:" + digest.hexdigest()[:16],
        pipeline_files,
        document=body,
        base_dir=base,
        bases=bases,
        resolutions=resolutions,
    )


def load_config(path: Path) -> LoadedConfig:
    """Read and validate the configuration file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(str(path), text, exc)) from None
    return parse_config(body, str(path), path.parent)


def yaml_error(source: str, text: str, exc: yaml.YAMLError) -> str:
    """What is wrong with the YAML ``text``, and where. A secret reference left unquoted
    inside ``{ }`` or ``[ ]`` (``{signing_key: ${KEY}}``) is the usual cause of a flow
    collection's error there: YAML reads its ``{`` as a nested mapping, so say to quote it."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"{source}: invalid YAML: {problem}"
    value = _unquoted_reference(text, mark.index)
    if value is not None:
        reference, whole = value
        # the reference starts one character before the `{` YAML stumbled on
        return (
            f"{source} (line {mark.line + 1}, column {mark.column}): invalid YAML: the "
            f"secret reference {reference} is inside {{ }} or [ ] without quotes, where YAML "
            f'reads its {{ as the start of a mapping; quote the value: "{whole}"'
        )
    return f"{source} (line {mark.line + 1}, column {mark.column + 1}): invalid YAML: {problem}"


def _unquoted_reference(text: str, index: int) -> tuple[str, str] | None:
    """The ``${NAME}`` whose ``{`` is at ``index`` in ``text``, if there is one, and the
    whole plain value it ends (``Bearer ${TOKEN}``)."""
    if index < 1 or text[index - 1 : index + 1] != "${":
        return None
    found = SECRET_REF.match(text, index - 1)
    if found is None:
        return None
    line_start = text.rfind("\n", 0, found.start()) + 1
    value_start = 1 + max(text.rfind(c, line_start, found.start()) for c in ":,[{")
    return found.group(0), text[max(value_start, line_start) : found.end()].strip()
