"""Config changes: "this tenant's configuration pointer moved", from whoever changed it to
every process serving the tenant (DESIGN §17: hot apply without restart).

Best effort, like wake-ups: the store's pointer stays the truth. A lost announcement costs
latency only, because every process also reads the pointers again periodically (5 s).
"""

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from acf.domain.ids import TenantId

ConfigChangeCallback = Callable[[TenantId], Awaitable[None]]


@runtime_checkable
class ConfigChanges(Protocol):
    """Guarantees: ``announce`` never raises and never waits long (a failure is logged and
    the announcement lost); every callback registered with ``subscribe`` is called with
    the tenant of each announcement made after it subscribed, in this process or (the
    distributed adapter) in any process sharing the database. Callbacks of one process run
    one at a time, in announcement order; a callback that raises is logged, not retried.
    """

    async def announce(self, tenant: TenantId) -> None: ...

    def subscribe(self, callback: ConfigChangeCallback) -> None: ...
