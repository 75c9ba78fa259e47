"""Directory: which tenants and agents exist (from configuration)."""

from typing import Protocol, runtime_checkable

from acf.domain.ids import AgentId, TenantId


@runtime_checkable
class Directory(Protocol):
    """Guarantees: answers from the loaded configuration only; never creates anything."""

    def has_tenant(self, tenant: TenantId) -> bool: ...

    def has_agent(self, tenant: TenantId, agent: AgentId) -> bool: ...
