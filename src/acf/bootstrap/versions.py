"""Configuration versions in the running service (DESIGN §17): how a stored version becomes
bindings (``VersionBuilds``), what ``acf serve`` pushes and promotes when it starts
(``sync_file_versions``), and the periodic re-read of the pointers (``keep_fresh``).

A version is loaded from its own source (``acf.config.versions_source.load_version``, its
files written under a folder of this process) and built like the file: the same pipeline
kinds and tools. A tenant's built-in tool sets are made once and shared by all its versions,
so a new version keeps the state of an in-process backend (the demo's orders).
"""

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from acf.bootstrap.agents import ToolBackends, agent_binding, tenant_bindings, tenant_tools
from acf.bootstrap.settings import ConfigSource
from acf.config.layers import override_fields, step_fields, step_files
from acf.config.load import LoadedConfig
from acf.config.versions_source import load_version, version_sources
from acf.domain.config_versions import ApplyMode, ConfigVersion, VersionStatus, version_label
from acf.domain.errors import Conflict, UnknownAgent
from acf.domain.ids import AgentId
from acf.ports.agent_binding import AgentBinding
from acf.ports.clock import Clock
from acf.ports.config_versions import PromoteVersion, PushVersion
from acf.ports.store import Store
from acf.ports.tool_backend import Tool
from acf.service.agents import Agents
from acf.service.built_version import BuiltVersion

log = structlog.get_logger("acf.config")

SERVE_AUTHOR = "acf serve"


@dataclass(slots=True)
class VersionBuilds:
    """The ``VersionBuilder`` of one process (``Agents.use_versions``)."""

    backends: ToolBackends
    sets: dict[str, dict[str, dict[str, Tool]]] = field(default_factory=dict)
    """Per tenant, its built-in tool sets (shared with the file's build)."""
    workdir: Path | None = None

    async def __call__(self, version: ConfigVersion) -> BuiltVersion:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="acf-versions-"))
        loaded = await asyncio.to_thread(load_version, version.source, self.workdir)
        return self.from_loaded(version, loaded)

    def from_loaded(
        self,
        version: ConfigVersion,
        loaded: LoadedConfig,
        bindings: Mapping[AgentId, AgentBinding] | None = None,
    ) -> BuiltVersion:
        """``version`` built from ``loaded`` (its content); ``bindings``: the agents'
        bindings already built from it (the file's, at start-up)."""
        tenant = version.tenant
        sets = self.sets.setdefault(tenant, {})
        tenant_fields = loaded.config.tenants[tenant]
        if bindings is None:
            bindings, tools = tenant_bindings(loaded, tenant, self.backends, sets)
        else:
            tools = tenant_tools(loaded.source, tenant, tenant_fields, self.backends, sets)

        def variant(
            agent: AgentId, scenario: str | None, step: str | None, overrides: Mapping[str, Any]
        ) -> AgentBinding:
            own = tenant_fields.agents.get(agent)
            if own is None:
                raise UnknownAgent(tenant, agent)
            fields, files = own, None
            if scenario is not None:
                fields = step_fields(loaded, tenant, agent, scenario, step)
                files = step_files(loaded, tenant, agent, scenario, step)
            if overrides:
                fields = override_fields(fields, own.overridable, overrides)
            return agent_binding(loaded, tenant, agent, fields, tools, files)

        upcaster = tenant_fields.state_upcaster
        return BuiltVersion(
            version,
            dict(bindings),
            variant,
            upcaster.upcast if upcaster is not None and not upcaster.empty else None,
        )

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def sync_file_versions(
    store: Store,
    loaded: LoadedConfig,
    mode: ConfigSource,
    clock: Clock,
    author: str = SERVE_AUTHOR,
) -> dict[str, ConfigVersion]:
    """Push each tenant of ``loaded`` as a version (nothing new when its content is
    stored already) and promote it when the tenant has no live version, or — ``file`` only
    — when the file changed since it was last pushed: this push stored a new version, or
    found it still a draft (a start that stopped before promoting it). Otherwise the
    store's live version stays (and is logged): a restart never undoes what the lifecycle
    made live (a promote, a rollback, a canary) since the file last changed. A promote
    refused (another process promoted meanwhile) is logged and the store's live version
    kept. Returns each tenant's pushed version."""
    sources = await asyncio.to_thread(version_sources, loaded)
    pushed: dict[str, ConfigVersion] = {}
    for tenant, source in sources.items():
        push = PushVersion(
            tenant,
            source.content_hash,
            source.source,
            source.resolved,
            source.provenance,
            author,
            f"{author}: {loaded.label}",
            source.git_commit,
            ApplyMode(source.apply),
            clock.now_ms(),
        )
        result = (await store.uow.commit(tenant, [push])).get(push)
        version = pushed[tenant] = result.version
        pointer = await store.config_versions.pointer(tenant)
        live = pointer.live if pointer is not None else None
        if live == version.number:
            continue
        if live is not None and not promotes_at_start(mode, result.created, version):
            log.info(
                "config.live_kept",
                tenant=tenant,
                config_version=version_label(live),
                file_version=version.label,
                source=mode.value,
            )
            continue
        promote = PromoteVersion(tenant, version.number, clock.now_ms(), author, forced=True)
        try:
            await store.uow.commit(tenant, [promote])
        except Conflict as exc:
            log.warning(
                "config.start_promote_refused",
                tenant=tenant,
                config_version=version.label,
                error=str(exc),
            )
            continue
        log.info("config.promoted_at_start", tenant=tenant, config_version=version.label)
    return pushed


def promotes_at_start(mode: ConfigSource, created: bool, version: ConfigVersion) -> bool:
    """Whether ``acf serve`` makes the file's version live over the tenant's live one:
    with ``ACF_CONFIG_SOURCE=file``, only when the file changed since it was last pushed
    (the push created the version, or it is a draft that never went live)."""
    if mode is not ConfigSource.FILE:
        return False
    return created or version.status is VersionStatus.DRAFT


def adopt_file_versions(
    agents: Agents,
    builds: VersionBuilds,
    loaded: LoadedConfig,
    pushed: Mapping[str, ConfigVersion],
    bindings: Mapping[str, Mapping[AgentId, AgentBinding]],
) -> None:
    """Hold the file's bindings as the builds of the versions just pushed from it (the
    same content: nothing is built twice)."""
    for tenant, version in pushed.items():
        if tenant in bindings:
            agents.adopt(builds.from_loaded(version, loaded, bindings[tenant]))


async def keep_fresh(agents: Agents, clock: Clock, every_s: float) -> None:
    """Read every tenant's pointer again every ``every_s`` (the safety net behind the
    change notifications), until cancelled."""
    while True:
        await clock.sleep(every_s)
        try:
            await agents.refresh_all()
        except Exception as exc:  # the store is away: the next round tries again
            log.warning("config.refresh_failed", error=repr(exc))
