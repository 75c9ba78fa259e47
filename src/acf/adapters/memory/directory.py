"""A directory held in memory: tenant -> its agents."""

from collections.abc import Iterable, Mapping

from acf.domain.ids import AgentId, TenantId


class StaticDirectory:
    def __init__(self, agents_by_tenant: Mapping[TenantId, Iterable[AgentId]]) -> None:
        self._agents = {tenant: frozenset(agents) for tenant, agents in agents_by_tenant.items()}

    def has_tenant(self, tenant: TenantId) -> bool:
        return tenant in self._agents

    def has_agent(self, tenant: TenantId, agent: AgentId) -> bool:
        return agent in self._agents.get(tenant, frozenset())
