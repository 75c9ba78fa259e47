"""The agents the runtime serves: each tenant's agents with their pipeline and settings.

``config_version`` is the content hash of everything loaded (DESIGN §2) until versioned
configuration exists: two runtimes with the same configuration report the same version.
"""

import hashlib
import json
from collections.abc import Mapping

from acf.domain.errors import UnknownAgent, UnknownTenant
from acf.domain.ids import AgentId, TenantId
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline


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

    def pipelines(self) -> list[Pipeline]:
        """Every agent's pipeline (one object may serve several agents: listed once)."""
        seen: dict[int, Pipeline] = {}
        for agents in self._bindings.values():
            for binding in agents.values():
                seen.setdefault(id(binding.pipeline), binding.pipeline)
        return list(seen.values())

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
