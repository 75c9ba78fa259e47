"""Channel reach: which channels a tenant's replies can leave on.

A ``ChannelSender`` that knows it (``acf.adapters.channels.routing.RoutingSender``: the
channels it has a sender for) also implements this; the fallback ladder skips the others
(DESIGN §9). A sender that does not is taken to reach every channel, and a copy sent
where it cannot go fails definitely and falls further down the ladder.
"""

from typing import Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.ids import TenantId


@runtime_checkable
class ChannelReach(Protocol):
    def reachable(self, tenant: TenantId) -> frozenset[Channel]: ...
