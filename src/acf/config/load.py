"""Load and check a configuration file: YAML in, a validated ``LoadedConfig`` out.

Every error names the file, the path of the field and what was expected, e.g.
``acf.yaml: tenants.demo.agents.support.settings.deadline_ms: Input should be greater
than 0``. The files a pipeline names are loaded and checked too, by its kind
(``acf.config.kinds``; their errors name their own file). Secrets stay references:
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

from acf.config.kinds import KIND_MODULES, AgentSite, SiteAwareKind, pipeline_kind
from acf.config.model import AcfConfig
from acf.config.secrets import SECRET_REF
from acf.domain.errors import InvalidValue


class ConfigError(InvalidValue):
    """The configuration is invalid; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: AcfConfig
    source: str
    version: str
    """A content hash of the file and the rules files it names."""
    pipeline_files: Mapping[tuple[str, str], object] = field(default_factory=dict)
    """What each (tenant, agent)'s pipeline kind loaded from the files it names (a rules
    pipeline: its ``RulesConfig``), for the kind's ``build`` (``acf.config.kinds``)."""

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        env = os.environ if environ is None else environ
        text = self.config.model_dump_json()
        return sorted({name for name in SECRET_REF.findall(text) if name not in env})


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
    return "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())


def parse_config(body: Any, source: str, base_dir: Path | None = None) -> LoadedConfig:
    """Validate a parsed YAML document; ``base_dir`` resolves relative rules files."""
    if not isinstance(body, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(body).__name__}"
        )
    try:
        config = AcfConfig.model_validate(body)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_problems(exc)}") from None
    digest = hashlib.sha256(yaml.safe_dump(body, sort_keys=True).encode("utf-8"))
    files: dict[tuple[str, str], object] = {}
    for tenant, tenant_fields in config.tenants.items():
        for agent, agent_fields in tenant_fields.agents.items():
            pipeline = agent_fields.pipeline
            where = f"{source}: tenants.{tenant}.agents.{agent}.pipeline"
            base = base_dir or Path.cwd()
            try:
                kind = pipeline_kind(pipeline.kind)
                if isinstance(kind, SiteAwareKind):
                    site = AgentSite(tenant, agent, tenant_fields.display_name)
                    loaded = kind.load_at(pipeline, where, base, site)
                else:
                    loaded = kind.load(pipeline, where, base)
            except InvalidValue as exc:  # a kind's files' errors name their file and field
                raise ConfigError(str(exc)) from None
            if loaded is not None:
                files[(tenant, agent)] = loaded.value
                digest.update(loaded.content)
    return LoadedConfig(config, source, "sha256:" + digest.hexdigest()[:16], files)


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
