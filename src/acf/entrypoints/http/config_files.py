"""``ConfigFiles`` over ``acf.config``: what the configuration lifecycle needs of the
configuration layer (an upload validated and split per tenant, a stored version loaded,
diffed, explained, overrides checked).

Stored versions are loaded from their source in a temporary folder that is removed at
once (the loaded configuration keeps what its pipelines read) and kept by content hash,
the few most recent.
"""

import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acf.config.diff import diff_resolved
from acf.config.layers import explain, override_fields
from acf.config.load import ConfigError, LoadedConfig
from acf.config.versions_source import VersionSource, load_version, version_sources
from acf.domain.config_versions import ConfigVersion
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

    def __init__(self, served: LoadedConfig) -> None:
        self._served = served
        self._loaded: OrderedDict[str, LoadedConfig] = OrderedDict()

    def prepare(self, upload: Upload) -> Mapping[str, PreparedSource]:
        sources: dict[str, VersionSource] = version_sources(load_upload(upload))
        return sources

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
