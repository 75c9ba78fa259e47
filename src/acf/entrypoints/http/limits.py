"""Per-tenant limits on accepted messages (DESIGN §15), with the ``limits`` library.

Over the limit, ingress answers 429 with ``Retry-After``: the message is not accepted, so
nothing is lost; the sender retries later.
"""

import math
import time
from collections.abc import Mapping

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from acf.domain.ids import TenantId

DEFAULT_RATE = "20/second"


class TenantLimits:
    def __init__(self, rates: Mapping[TenantId, str], storage: Storage | None = None) -> None:
        self._items = {tenant: limits.parse(rate) for tenant, rate in rates.items()}
        self._default = limits.parse(DEFAULT_RATE)
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    async def admit(self, tenant: TenantId) -> int | None:
        """Count one message; None when admitted, else the seconds to wait (>= 1)."""
        item = self._items.get(tenant, self._default)
        if await self._limiter.hit(item, "messages", tenant):
            return None
        stats = await self._limiter.get_window_stats(item, "messages", tenant)
        return max(1, math.ceil(stats.reset_time - time.time()))
