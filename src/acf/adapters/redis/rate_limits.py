"""The per-tenant limits' counters on Redis, shared by every API process (DESIGN §10, §15).

``RedisRateLimitStorage(url).storage`` is a ``limits`` async storage for
``TenantLimits(rates, storage=...)``: one budget per tenant across all processes. Its
commands fail fast (``timeout_s``, no hidden retries) with ``limits.errors.StorageError``,
which ``TenantLimits`` answers by counting in process memory until Redis is back.
"""

from typing import Any

from limits.aio.storage import RedisStorage

from acf.adapters.redis.client import DEFAULT_TIMEOUT_S, fail_fast_pool

KEY_PREFIX = "acf-limits"


class RedisRateLimitStorage:
    """Owns the connection pool under ``storage``; ``await close()`` on shutdown."""

    def __init__(
        self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, key_prefix: str = KEY_PREFIX
    ) -> None:
        # Raw replies, as ``limits`` expects from the client it would build itself.
        self._pool = fail_fast_pool(url, timeout_s, decode_responses=False)
        # ``limits`` types its client options as scalars; a pool is what redis-py takes.
        options: dict[str, Any] = {"connection_pool": self._pool}
        self.storage = RedisStorage(
            "async+" + url.removeprefix("async+"),
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=key_prefix,
            **options,
        )

    async def close(self) -> None:
        await self._pool.aclose()
