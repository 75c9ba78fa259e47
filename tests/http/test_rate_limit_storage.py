"""Per-tenant limits on a shared Redis (DESIGN §10, §15): one budget across API processes,
and a Redis outage loosens the limit to one budget per process, never fails a request.

Each ``TenantLimits`` over its own ``RedisRateLimitStorage`` plays one API process, on the
test's own redis-server (never the shared one)."""

from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import MemoryStorage

from acf.adapters.redis.rate_limits import RedisRateLimitStorage
from acf.entrypoints.http.limits import TenantLimits
from tests.integration.redis_server import RedisServer, private_redis

RATES = {"acme": "2/minute", "globex": "2/minute"}


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async for server in private_redis():
        yield server


class Processes:
    def __init__(self, server: RedisServer) -> None:
        self._server = server
        self.storages: list[RedisRateLimitStorage] = []

    def limits(self, retry_after_s: float = 1.0) -> TenantLimits:
        storage = RedisRateLimitStorage(self._server.url)
        self.storages.append(storage)
        return TenantLimits(RATES, storage.storage, retry_after_s=retry_after_s)


@pytest.fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[Processes]:
    opened = Processes(redis_server)
    try:
        yield opened
    finally:
        for storage in opened.storages:
            await storage.close()


async def test_processes_sharing_redis_share_one_budget(processes: Processes) -> None:
    first, second = processes.limits(), processes.limits()

    assert await first.admit("acme") is None
    assert await second.admit("acme") is None
    wait = await first.admit("acme")
    assert wait is not None and 1 <= wait <= 60
    assert await second.admit("acme") is not None
    # Budgets are per tenant, and typing has its own.
    assert await second.admit("globex") is None
    assert await second.admit("acme", "typing") is None


async def test_without_redis_admit_counts_in_process_memory_until_it_is_back(
    processes: Processes, redis_server: RedisServer
) -> None:
    first, second = processes.limits(retry_after_s=0), processes.limits(retry_after_s=0)
    await redis_server.stop()

    # No exception: each process counts its own budget in memory meanwhile.
    assert await first.admit("acme") is None
    assert await first.admit("acme") is None
    assert await first.admit("acme") is not None
    assert await second.admit("acme") is None

    await redis_server.start()
    assert await first.admit("globex") is None
    assert await second.admit("globex") is None
    assert await first.admit("globex") is not None  # shared on Redis again


async def test_a_storage_that_never_answers_falls_back_at_once() -> None:
    unreachable = RedisRateLimitStorage("redis://127.0.0.1:1/0")
    try:
        limits = TenantLimits(RATES, unreachable.storage)
        assert await limits.admit("acme") is None
        assert await limits.admit("acme") is None  # in memory, Redis not asked again yet
        assert await limits.admit("acme") is not None
    finally:
        await unreachable.close()


async def test_without_a_shared_storage_the_budget_is_the_process_one() -> None:
    limits = TenantLimits(RATES, MemoryStorage())
    assert [await limits.admit("acme") for _ in range(3)][2] is not None
