"""The firewall's per-customer message counters on Redis, shared by every API process,
with the store's counters (``SqlCustomerRates``) as the fallback.

One key per customer, channel and bucket: ``<prefix><tenant>:<channel>:m:<minute start>:
<customer>`` and ``…:d:<day start>:<customer>``, counted by a pipelined INCR + PEXPIRE
(each key outlives its bucket by one bucket, so the previous minute can still be read).
Redis is an accelerator: when it fails (refused, timed out) the count goes to the fallback,
the outage is logged once, and Redis is tried again after ``retry_after_s``. Counts made
during an outage stay in the store; the limits loosen for the minutes around it, nothing
is ever refused because of it.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis

from acf.adapters.redis.client import DEFAULT_TIMEOUT_S, describe, fail_fast_client
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.firewall import DAY_MS, MINUTE_MS, CustomerRates, RateCounts

log = structlog.get_logger("acf.firewall")

KEY_PREFIX = "acf:rate:"


class RedisCustomerRates:
    """``CustomerRates`` on Redis, falling back to ``fallback``; see the module."""

    def __init__(
        self,
        url: str,
        fallback: CustomerRates,
        *,
        key_prefix: str = KEY_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = 1.0,
    ) -> None:
        self._client: Redis = fail_fast_client(url, timeout_s)
        self._fallback = fallback
        self._prefix = key_prefix
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._down = False
        self._retry_at = 0.0

    def _keys(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> tuple[str, str, str]:
        minute = at_ms - at_ms % MINUTE_MS
        base = f"{self._prefix}{tenant}:{channel.value}"
        return (
            f"{base}:m:{minute}:{customer}",
            f"{base}:m:{minute - MINUTE_MS}:{customer}",
            f"{base}:d:{at_ms - at_ms % DAY_MS}:{customer}",
        )

    async def hit(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        minute, previous, day = self._keys(tenant, channel, customer, at_ms)

        async def count(redis: Redis) -> list[Any]:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(minute)
                pipe.pexpire(minute, 2 * MINUTE_MS)
                pipe.incr(day)
                pipe.pexpire(day, 2 * DAY_MS)
                pipe.get(previous)
                return list(await pipe.execute())

        replies = await self._redis(count)
        if replies is None:
            return await self._fallback.hit(tenant, channel, customer, at_ms)
        return _counts(replies[0], replies[4], replies[2], at_ms)

    async def peek(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        minute, previous, day = self._keys(tenant, channel, customer, at_ms)

        async def read(redis: Redis) -> list[Any]:
            return list(await redis.mget([minute, previous, day]))

        replies = await self._redis(read)
        if replies is None:
            return await self._fallback.peek(tenant, channel, customer, at_ms)
        return _counts(replies[0], replies[1], replies[2], at_ms)

    async def prune(self, tenant: TenantId, before_ms: int) -> int:
        """Redis's keys expire by themselves; this prunes what the fallback counted."""
        return await self._fallback.prune(tenant, before_ms)

    async def tallies(
        self,
        tenant: TenantId,
        channel: Channel,
        customer: str,
        buckets: Sequence[tuple[str, int]],
    ) -> list[int]:
        """The firewall's own tallies live in the store: the fallback's."""
        return await self._fallback.tallies(tenant, channel, customer, buckets)

    async def close(self) -> None:
        await self._client.aclose()

    async def _redis(self, command: Callable[[Redis], Awaitable[list[Any]]]) -> list[Any] | None:
        """``command(client)``'s replies, or None when Redis is down (fall back)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return None
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                replies = await command(self._client)
        except Exception as exc:  # refused, timed out, or anything else: fall back
            self._retry_at = loop.time() + self._retry_after_s
            if not self._down:
                self._down = True
                log.warning("firewall.redis_down", error=describe(exc))
            return None
        if self._down:
            self._down = False
            log.info("firewall.redis_back")
        return replies


def _counts(minute: Any, previous: Any, day: Any, at_ms: int) -> RateCounts:
    return RateCounts(
        int(minute or 0), int(previous or 0), (at_ms % MINUTE_MS) / MINUTE_MS, int(day or 0)
    )
