"""Per-tenant limits on accepted messages (DESIGN §15), with the ``limits`` library.

Over the limit, ingress answers 429 with ``Retry-After``: the message is not accepted, so
nothing is lost; the sender retries later. Typing signals have their own budget, a
multiple of the message rate (a typing customer sends one every few seconds).
"""

import math
import time
from collections.abc import Mapping

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from acf.domain.ids import TenantId

TYPING_PER_MESSAGE = 5


class TenantLimits:
    def __init__(self, rates: Mapping[TenantId, str], storage: Storage | None = None) -> None:
        self._items: dict[tuple[TenantId, str], limits.RateLimitItem] = {}
        for tenant, rate in rates.items():
            item = limits.parse(rate)
            self._items[(tenant, "messages")] = item
            self._items[(tenant, "typing")] = type(item)(
                item.amount * TYPING_PER_MESSAGE, item.multiples
            )
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    async def admit(self, tenant: TenantId, kind: str = "messages") -> int | None:
        """Count one request of ``kind`` (messages, typing); None when admitted, else the
        seconds to wait (>= 1)."""
        item = self._items[(tenant, kind)]
        if await self._limiter.hit(item, kind, tenant):
            return None
        stats = await self._limiter.get_window_stats(item, kind, tenant)
        return max(1, math.ceil(stats.reset_time - time.time()))
