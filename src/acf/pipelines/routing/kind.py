"""The ``router`` pipeline kind: each route's child is loaded, checked and built by its own
kind (``acf.config.kinds``), its files relative to the same configuration file and its
errors naming ``….pipeline.routes.<route>``; every child may call the agent's tools.

A router's turns get the settings its most demanding child needs (an LLM child reads 200
messages of history, an agent service may take 330 s): per setting, the largest default of
the kinds of its routes (``settings_defaults_for``). ``settings_defaults``, which does not
see the routes, takes the largest over every kind a route may be. The agent's own
``settings`` still win.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acf.config.agent_service import AgentServicePipelineFields
from acf.config.kinds import (
    KIND_MODULES,
    SETTINGS_DEFAULTS,
    AgentSite,
    LoadedFiles,
    SiteAwareKind,
    pipeline_kind,
)
from acf.config.pipelines import RouterPipelineFields
from acf.domain.tools import ToolSpec
from acf.pipelines.routing.pipeline import RouterPipeline, Service
from acf.ports.pipeline import Pipeline

CHILD_KINDS = ("rules", "python", "llm", "agent_service")
"""The kinds a route may be (``acf.config.pipelines.ChildPipelineFields``): any but a router."""


@dataclass(frozen=True, slots=True)
class RouterFiles:
    """What each route's kind loaded (None: a kind that names no file)."""

    routes: Mapping[str, object | None]


def largest_defaults(kinds: Sequence[str]) -> dict[str, Any]:
    """Per setting, the largest of the ``settings_defaults`` of ``kinds`` (the registered
    ones)."""
    merged: dict[str, Any] = {}
    for name in kinds:
        if name not in KIND_MODULES:
            continue
        defaults: Mapping[str, Any] = getattr(pipeline_kind(name), SETTINGS_DEFAULTS, {})
        for setting, value in defaults.items():
            merged[setting] = value if setting not in merged else max(merged[setting], value)
    return merged


class RouterKind:
    @property
    def settings_defaults(self) -> Mapping[str, Any]:
        return largest_defaults(CHILD_KINDS)

    def settings_defaults_for(self, fields: Any) -> Mapping[str, Any]:
        """The settings defaults of the router ``fields``: those its routes' kinds need."""
        assert isinstance(fields, RouterPipelineFields)
        return largest_defaults([child.kind for child in fields.routes.values()])

    def load(self, fields: Any, where: str, base_dir: Path) -> LoadedFiles:
        return self._load(fields, where, base_dir, None)

    def load_at(self, fields: Any, where: str, base_dir: Path, site: AgentSite) -> LoadedFiles:
        return self._load(fields, where, base_dir, site)

    def _load(self, fields: Any, where: str, base_dir: Path, site: AgentSite | None) -> LoadedFiles:
        assert isinstance(fields, RouterPipelineFields)
        routes: dict[str, object | None] = {}
        content = bytearray()
        files: dict[str, str] = {}
        for name, child in fields.routes.items():
            kind = pipeline_kind(child.kind)
            child_where = f"{where}.routes.{name}"
            if site is not None and isinstance(kind, SiteAwareKind):
                loaded = kind.load_at(child, child_where, base_dir, site)
            else:
                loaded = kind.load(child, child_where, base_dir)
            routes[name] = None if loaded is None else loaded.value
            if loaded is not None:
                files.update(loaded.files)
            if loaded is not None and loaded.content:
                # each route's bytes framed by its name and length: the version is unambiguous
                content += f"{name}:{len(loaded.content)}:".encode() + loaded.content
        return LoadedFiles(RouterFiles(routes), bytes(content), files)

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        assert isinstance(fields, RouterPipelineFields)
        loaded = files.routes if isinstance(files, RouterFiles) else {}
        children: dict[str, Pipeline] = {}
        services: dict[str, Service] = {}
        for name, child in fields.routes.items():
            children[name] = pipeline_kind(child.kind).build(
                child, loaded.get(name), tools, f"{where}.routes.{name}"
            )
            if isinstance(child, AgentServicePipelineFields):
                services[name] = Service(child.base_url, child.profile)
        return RouterPipeline(fields, children, services)


KIND = RouterKind()
