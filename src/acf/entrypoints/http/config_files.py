"""``ConfigFiles`` over ``acf.config``: what the configuration lifecycle needs of the
configuration layer (an upload validated and split per tenant, a stored version loaded,
diffed, explained, overrides checked).

An upload is what a tenant's admin key sends, so it is trusted with no more than the file
``acf serve`` loaded (``served``) already grants, checked before anything is built:

- a ``python`` pipeline (an agent's, a router route's, a scenario step's) may name only a
  ``factory`` the served file uses: code is approved by the operator and pinned by the
  agent version, and changes only in the served file;
- a secret reference ``${NAME}`` may name only a secret the served file's configuration of
  the same tenant references, or one starting ``ACF_SECRET_<TENANT>_`` (``tenant_prefix``);
- then every agent and scenario step is built, as the runtime would, over tools whose HTTP
  client refuses every request and the built-in tool sets of this process, so a version
  that cannot be built is refused (422) rather than stored.

Errors name the field and the reference, never a secret's value. Stored versions are
loaded from their source in a temporary folder that is removed at once (the loaded
configuration keeps what its pipelines read) and kept by content hash, the few most recent.
"""

import dataclasses
import re
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from acf.bootstrap import BuiltinTools, ToolBackends
from acf.bootstrap.agents import agent_binding, tenant_bindings
from acf.config.diff import diff_resolved
from acf.config.layers import explain, override_fields
from acf.config.load import ConfigError, LoadedConfig
from acf.config.secrets import SECRET_REF
from acf.config.versions_source import load_version, version_sources
from acf.domain.config_versions import ConfigVersion
from acf.domain.errors import InvalidValue
from acf.domain.ids import TenantId
from acf.entrypoints.http.config_uploads import load_upload
from acf.service.config_lifecycle import (
    ExplainedValue,
    KeyChange,
    NoSuchAgent,
    PreparedSource,
    Upload,
)

LOADED_KEPT = 16
"""Stored versions kept loaded (by content hash)."""


class FileConfigs:
    """The configuration layer for the lifecycle; ``served`` is the file acf serves (for a
    tenant that has no version yet). Thread-safe enough for ``asyncio.to_thread``: the
    cache only ever holds fully loaded versions."""

    def __init__(self, served: LoadedConfig, builtin: BuiltinTools | None = None) -> None:
        self._served = served
        self._builtin = builtin or BuiltinTools()
        self._factories = frozenset(python_factories(served).values())
        self._loaded: OrderedDict[str, LoadedConfig] = OrderedDict()

    def prepare(self, upload: Upload) -> Mapping[str, PreparedSource]:
        loaded = load_upload(upload, check=self._check)
        # an upload has no git commit of its own (the push body may give one)
        return {
            tenant: dataclasses.replace(source, git_commit=None)
            for tenant, source in version_sources(loaded).items()
        }

    def _check(self, loaded: LoadedConfig) -> None:
        """Python factories, secret references, then the build (``ConfigError``)."""
        name = loaded.label
        for where, factory in python_factories(loaded).items():
            if factory not in self._factories:
                raise ConfigError(
                    f"{name}: {where}: python pipeline factory {factory!r} is not one the "
                    "served configuration uses: python pipelines are code, which changes only "
                    f"in the file acf serves (it uses {sorted(self._factories) or 'none'})"
                )
        for tenant in loaded.config.tenants:
            allowed = secret_names(self._served, tenant)
            prefix = tenant_prefix(tenant)
            for where, ref in secret_references(loaded, tenant):
                if ref not in allowed and not ref.startswith(prefix):
                    raise ConfigError(
                        f"{name}: {where}: secret reference ${{{ref}}} is not allowed: an "
                        f"uploaded version may reference only the secrets tenant {tenant}'s "
                        "configuration in the served file references, or names starting "
                        f"{prefix}"
                    )
        self._build(loaded)

    def _build(self, loaded: LoadedConfig) -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(_refusing))
        backends = ToolBackends(client, self._builtin)
        for tenant in loaded.config.tenants:
            try:
                _, tools = tenant_bindings(loaded, tenant, backends, {})
                for (agent, _s, _t), step in loaded.resolutions[tenant].steps.items():
                    agent_binding(loaded, tenant, agent, step.fields, tools, step.files)
            except InvalidValue as exc:  # ConfigError too: it names the file and field
                raise ConfigError(f"{exc} (the version cannot be built)") from None

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> Sequence[KeyChange]:
        return diff_resolved(before, after)

    def explain(
        self, version: ConfigVersion, agent: str, key: str | None
    ) -> Sequence[ExplainedValue]:
        loaded = self._agent_in(self.loaded(version), version.tenant, agent, version.label)
        return explain(loaded, version.tenant, agent, key)

    def check_overrides(
        self,
        version: ConfigVersion | None,
        tenant: TenantId,
        agent: str,
        overrides: Mapping[str, Any],
    ) -> None:
        if version is None:
            loaded = self._agent_in(self._served, tenant, agent, "the served configuration")
        else:
            loaded = self._agent_in(self.loaded(version), tenant, agent, version.label)
        fields = loaded.config.tenants[tenant].agents[agent]
        override_fields(fields, fields.overridable, overrides)

    def loaded(self, version: ConfigVersion) -> LoadedConfig:
        """The version's configuration, parsed from its stored source."""
        found = self._loaded.get(version.content_hash)
        if found is not None:
            return found
        with tempfile.TemporaryDirectory(prefix="acf-version-") as folder:
            try:
                loaded = load_version(version.source, Path(folder))
            except ConfigError as exc:  # say which version, not the temporary folder
                message = str(exc).replace(folder, version.label)
                raise ConfigError(f"{version.label}: {message}") from None
        self._loaded[version.content_hash] = loaded
        while len(self._loaded) > LOADED_KEPT:
            self._loaded.popitem(last=False)
        return loaded

    @staticmethod
    def _agent_in(loaded: LoadedConfig, tenant: TenantId, agent: str, what: str) -> LoadedConfig:
        tenants = loaded.config.tenants
        if tenant not in tenants or agent not in tenants[tenant].agents:
            raise NoSuchAgent(f"{what} has no agent {agent!r} for tenant {tenant}")
        return loaded


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("a configuration being checked never calls a tool", request=request)


def _walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of ``value`` and everything inside it."""
    yield where, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}.{index}")


def python_factories(loaded: LoadedConfig) -> dict[str, str]:
    """Field path → ``factory`` of every python pipeline ``loaded`` may build: each agent's
    (a router's routes too) and each scenario step's, resolved."""
    found: dict[str, str] = {}
    for tenant, fields in loaded.config.tenants.items():
        pipelines = {
            f"tenants.{tenant}.agents.{agent}.pipeline": agent_fields.pipeline
            for agent, agent_fields in fields.agents.items()
        }
        resolution = loaded.resolutions.get(tenant)
        for (agent, scenario, step), resolved in (resolution.steps if resolution else {}).items():
            where = f"tenants.{tenant}.agents.{agent}.scenarios.{scenario}"
            where += "" if step is None else f".steps.{step}"
            pipelines[f"{where}.pipeline"] = resolved.fields.pipeline
        for where, pipeline in pipelines.items():
            for path, node in _walk(pipeline.model_dump(mode="json"), where):
                if isinstance(node, Mapping) and node.get("kind") == "python":
                    found[f"{path}.factory"] = str(node.get("factory"))
    return found


def tenant_prefix(tenant: str) -> str:
    """The secrets a tenant's uploads may always name: ``ACF_SECRET_<TENANT>_`` (upper
    case, anything but letters and digits as ``_``)."""
    return "ACF_SECRET_" + re.sub(r"[^A-Z0-9]", "_", tenant.upper()) + "_"


def _tenant_texts(loaded: LoadedConfig, tenant: str) -> Iterator[tuple[str, Any]]:
    """Where a tenant's configuration may hold a secret reference: its part of the file as
    written, its base agents' files, the files it read, its resolved fields and steps."""
    tenants = loaded.document.get("tenants") or {}
    body = tenants.get(tenant) if isinstance(tenants, Mapping) else None
    yield from _walk(body, f"tenants.{tenant}")
    resolution = loaded.resolutions.get(tenant)
    if resolution is None:
        return
    for name in resolution.bases:
        base = loaded.bases.get(name)
        if base is not None:
            yield from _walk(base.body, f"{base.path}: (base {name})")
    yield from resolution.files.items()
    fields = loaded.config.tenants.get(tenant)
    if fields is not None:
        yield f"tenants.{tenant}", fields.model_dump_json()
    for step in resolution.steps.values():
        yield f"tenants.{tenant}", step.fields.model_dump_json()


def secret_references(loaded: LoadedConfig, tenant: str) -> list[tuple[str, str]]:
    """(where, name) of every ``${NAME}`` in the tenant's configuration, first place first."""
    found: dict[str, str] = {}
    for where, value in _tenant_texts(loaded, tenant):
        for name in SECRET_REF.findall(value) if isinstance(value, str) else ():
            found.setdefault(name, where)
    return [(where, name) for name, where in found.items()]


def secret_names(loaded: LoadedConfig, tenant: str) -> frozenset[str]:
    """The secrets the tenant's configuration in ``loaded`` references."""
    return frozenset(name for _, name in secret_references(loaded, tenant))
