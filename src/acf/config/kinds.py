"""The registry of pipeline kinds: for each ``pipeline.kind`` of the configuration file,
the module that knows how that kind loads and checks the files its fields name, and how it
becomes a ``Pipeline``.

A kind's module is imported when a configuration first uses the kind, so the configuration
layer never imports the pipelines (nor their SDKs, for kinds behind an extra). A new kind is
one line here, one module exposing ``KIND`` and one fields class in ``acf.config.pipelines``.
"""

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.ports.pipeline import Pipeline

KIND_MODULES: dict[str, str] = {
    "rules": "acf.pipelines.rules_kind",
    "python": "acf.pipelines.python_kind",
    "llm": "acf.pipelines.llm.kind",
    "agent_service": "acf.pipelines.agent_service.kind",
    "router": "acf.pipelines.routing.kind",
}
"""Each kind's module; it exposes ``KIND``, a ``PipelineKind``."""


@dataclass(frozen=True, slots=True)
class LoadedFiles:
    """What a kind read for one agent: the checked ``value`` (handed back to ``build``) and
    the bytes of the files read, which count in the configuration's version."""

    value: object
    content: bytes = b""
    files: Mapping[str, str] = field(default_factory=dict)
    """The text of each file read, by its path as the configuration names it (relative to
    the configuration file, or absolute): a version embeds them (``acf.config
    .versions_source``). A Python module is not among them: code is pinned by the agent's
    version, not the configuration's."""


class PipelineKind(Protocol):
    """How one kind of pipeline is configured. ``where`` names the file and the field
    (``acf.yaml: tenants.demo.agents.support.pipeline``); errors are ``InvalidValue`` whose
    message starts with it (or names the kind's own file and field)."""

    def load(self, fields: Any, where: str, base_dir: Path) -> LoadedFiles | None:
        """Read and check the files ``fields`` name (relative to ``base_dir``); ``None``
        when the kind names no file."""
        ...

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        """The pipeline of one agent, given its loaded files and the tools it may call."""
        ...


@dataclass(frozen=True, slots=True)
class AgentSite:
    """Where a pipeline serves: its tenant (and the tenant's display name) and agent."""

    tenant: str
    agent: str
    tenant_display_name: str | None = None


SETTINGS_DEFAULTS = "settings_defaults"
"""Optional attribute of a kind: agent settings it needs other than acf's defaults (an LLM
reads a longer history, which its token budget then windows); the agent's own
``settings`` still win."""
SETTINGS_DEFAULTS_FOR = "settings_defaults_for"
"""Optional method of a kind, ``(fields) -> Mapping``: the same, for one configuration
(a router's depend on its routes); used instead of ``settings_defaults`` when present."""


@runtime_checkable
class SiteAwareKind(Protocol):
    """Optional: a kind whose files depend on the agent's site (an LLM's system prompt
    names the tenant). The loader calls ``load_at`` instead of ``load`` when it exists."""

    def load_at(
        self, fields: Any, where: str, base_dir: Path, site: AgentSite
    ) -> LoadedFiles | None: ...


def pipeline_kind(name: str) -> PipelineKind:
    """The kind called ``name``; raises ``InvalidValue`` for an unknown one."""
    module_name = KIND_MODULES.get(name)
    if module_name is None:
        raise InvalidValue(
            f"unknown pipeline kind {name!r}; expected one of {sorted(KIND_MODULES)}"
        )
    kind: PipelineKind = importlib.import_module(module_name).KIND
    return kind
