"""Per-tenant limits on accepted messages (DESIGN §15), with the ``limits`` library, and the
per-customer limits of the abuse firewall as the customer API applies them.

Over a limit, the customer API (``/v1/messages``, ``/v1/typing``, ``/agent-answer``)
answers 429 with ``Retry-After``: the message is not accepted, so nothing is lost; its
caller retries later. A signed provider webhook is never refused for a rate (its provider
may not retry: ``webhooks.note_rate``). Typing signals have their own budget, a multiple of
the message rate (a typing customer sends one every few seconds).

With a shared ``storage`` (Redis, DESIGN §10) the budget is one across all processes.
When that storage fails, counting goes on in process memory (logged once per outage) and
the shared storage is tried again after ``retry_after_s``: an outage loosens the limit to
one budget per process for a while, it never fails a request.
"""

import math
import time
from collections.abc import Mapping

import limits
import structlog
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from acf.domain.abuse import CustomerLimits
from acf.domain.ids import TenantId
from acf.ports.firewall import DAY_MS, MINUTE_MS, RateCounts

TYPING_PER_MESSAGE = 5

log = structlog.get_logger("acf.http")


class TenantLimits:
    def __init__(
        self,
        rates: Mapping[TenantId, str],
        storage: Storage | None = None,
        *,
        retry_after_s: float = 1.0,
    ) -> None:
        self._rates = dict(rates)
        self._items: dict[tuple[TenantId, str], limits.RateLimitItem] = {}
        for tenant, rate in rates.items():
            item = limits.parse(rate)
            self._items[(tenant, "messages")] = item
            self._items[(tenant, "typing")] = type(item)(
                item.amount * TYPING_PER_MESSAGE, item.multiples
            )
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = MovingWindowRateLimiter(storage) if storage is not None else None
        self._failures = _failures(storage)
        self._retry_after_s = retry_after_s
        self._retry_at = 0.0
        self._down = False

    def rate(self, tenant: TenantId) -> str:
        """The tenant's accepted-message rate as configured (``"20/second"``)."""
        return self._rates[tenant]

    async def admit(self, tenant: TenantId, kind: str = "messages") -> int | None:
        """Count one request of ``kind`` (messages, typing); None when admitted, else the
        seconds to wait (>= 1). Never raises for a failing storage (see the module)."""
        item = self._items[(tenant, kind)]
        if self._shared is not None and time.monotonic() >= self._retry_at:
            try:
                wait = await _admit(self._shared, item, tenant, kind)
            except self._failures as exc:
                self._retry_at = time.monotonic() + self._retry_after_s
                if not self._down:
                    self._down = True
                    log.warning(
                        "rate_limits.storage_down",
                        error=f"{type(exc).__name__}: {exc}",
                        fallback="memory",
                    )
            else:
                if self._down:
                    self._down = False
                    log.info("rate_limits.storage_back")
                return wait
        return await _admit(self._local, item, tenant, kind)


def customer_wait_s(counts: RateCounts, limits: CustomerLimits, now_ms: int) -> int | None:
    """None when a customer with ``counts`` (read at ``now_ms``) may send one more message
    under ``limits``; else the seconds to wait (>= 1) until they may, if they send nothing
    meanwhile: to the next UTC day when the day's count is spent, else until the sliding
    estimate ``minute + prev_minute * (1 - frac)`` drops below ``per_minute``
    (``minute_wait_ms``)."""
    if counts.day >= limits.per_day:
        return _seconds(DAY_MS - now_ms % DAY_MS)
    if counts.per_minute >= limits.per_minute:
        wait_ms = minute_wait_ms(counts.minute, counts.prev_minute, limits.per_minute, now_ms)
        return _seconds(wait_ms)
    return None


def minute_wait_ms(minute: int, prev_minute: int, per_minute: int, now_ms: int) -> int:
    """The milliseconds from ``now_ms`` until ``minute + prev_minute * (1 - f) <
    per_minute`` holds, ``f`` being the share elapsed of the minute then, and no message
    counted meanwhile: later in this minute while ``minute`` is under the limit (the
    previous minute's share fades), else in the next one, where this minute's count is the
    previous one (it is always true two minutes on)."""
    elapsed = now_ms % MINUTE_MS
    if minute < per_minute:
        if prev_minute == 0:
            return 0
        # prev * (MINUTE - e) < (per_minute - minute) * MINUTE  <=>  e > threshold
        at = (prev_minute - (per_minute - minute)) * MINUTE_MS // prev_minute + 1
        if at < MINUTE_MS:
            return max(0, at - elapsed)
    # next minute: minute * (MINUTE - e) < per_minute * MINUTE
    at = (minute - per_minute) * MINUTE_MS // minute + 1 if minute >= per_minute else 0
    return MINUTE_MS - elapsed + at


def _seconds(wait_ms: int) -> int:
    return max(1, math.ceil(wait_ms / 1000))


async def _admit(
    limiter: MovingWindowRateLimiter, item: limits.RateLimitItem, tenant: TenantId, kind: str
) -> int | None:
    if await limiter.hit(item, kind, tenant):
        return None
    stats = await limiter.get_window_stats(item, kind, tenant)
    return max(1, math.ceil(stats.reset_time - time.time()))


def _failures(storage: Storage | None) -> tuple[type[Exception], ...]:
    """What a failing storage raises: wrapped, its client's own errors, or the network's."""
    own = storage.base_exceptions if storage is not None else ()
    own = own if isinstance(own, tuple) else (own,)
    return (StorageError, OSError, TimeoutError, *own)
