"""The agents the runtime serves: each tenant's agents with their pipeline and settings.

``config_version`` is the content hash of everything loaded (DESIGN §2) until versioned
configuration exists: two runtimes with the same configuration report the same version.
"""

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from types import MappingProxyType
from typing import Any

import acf
from acf.domain.agent_settings import AgentSettings
from acf.domain.errors import UnknownAgent, UnknownTenant
from acf.domain.ids import AgentId, TenantId
from acf.ports.pipeline import Pipeline
from acf.service.tool_gateway import ToolRegistry


@dataclass(frozen=True)
class AgentBinding:
    pipeline: Pipeline
    settings: AgentSettings
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    """The tools this agent may call (the allowlist)."""

    @cached_property
    def agent_version(self) -> str:
        """acf's version plus the pipeline's declared version."""
        return f"acf/{acf.__version__} {self.pipeline.name}/{self.pipeline.version}"

    @cached_property
    def resolved(self) -> Mapping[str, Any]:
        """``describe()`` computed once and frozen all the way down (what ``ctx.config``
        shows): a pipeline cannot change the configuration of later turns."""
        frozen: Mapping[str, Any] = _freeze(self.describe())
        return frozen

    def describe(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON."""
        return {
            "pipeline": {"name": self.pipeline.name, "version": self.pipeline.version},
            "tools": [
                _plain(dataclasses.asdict(tool.spec))
                for tool in (self.tools.get(n) for n in self.tools.names())
                if tool is not None
            ],
            "settings": _plain(dataclasses.asdict(self.settings)),
        }


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Agents:
    """Tenant -> agent -> binding. Also answers the ``Directory`` port for ingress."""

    def __init__(self, bindings: Mapping[TenantId, Mapping[AgentId, AgentBinding]]) -> None:
        self._bindings = {tenant: dict(agents) for tenant, agents in bindings.items()}
        body = {
            tenant: {agent: b.describe() for agent, b in sorted(agents.items())}
            for tenant, agents in sorted(self._bindings.items())
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        self.config_version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def has_tenant(self, tenant: TenantId) -> bool:
        return tenant in self._bindings

    def has_agent(self, tenant: TenantId, agent: AgentId) -> bool:
        return agent in self._bindings.get(tenant, {})

    def get(self, tenant: TenantId, agent: AgentId) -> AgentBinding:
        if tenant not in self._bindings:
            raise UnknownTenant(tenant)
        try:
            return self._bindings[tenant][agent]
        except KeyError:
            raise UnknownAgent(tenant, agent) from None
