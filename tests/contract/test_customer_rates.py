"""The firewall's per-customer counters (``CustomerRates``) on every backend: the store's
(SQLite, PostgreSQL) and Redis's (the machine's server, under a key prefix of this test's),
with the store's as Redis's fallback; and ``CountCustomer``, the firewall's own tallies.

- ``hit`` counts in the minute and the UTC day, returns the counts including the message,
  and reads the previous minute for the sliding estimate; ``peek`` reads without counting;
- counts are per tenant, channel and customer;
- ``prune`` drops the tenant's buckets that started before a time;
- a Redis that fails (a private server killed by its pid) costs no count: the store counts
  until Redis answers again.
"""

from collections.abc import AsyncIterator

import pytest
from redis.exceptions import RedisError

from acf.adapters.redis.client import fail_fast_client
from acf.adapters.redis.customer_rates import RedisCustomerRates
from acf.domain.channels import Channel
from acf.domain.ids import new_id
from acf.ports.firewall import DAY_MS, MINUTE_MS, CountCustomer, CustomerRates
from acf.ports.store import Store
from tests.integration.redis_server import RedisServer, private_redis
from tests.integration.services import services_required

SHARED_REDIS = "redis://127.0.0.1:6379/0"
DAY = 20_000 * DAY_MS
"""A UTC day's start."""
T0 = DAY + 5 * MINUTE_MS + 15_000
"""15 s into the day's sixth minute."""


@pytest.fixture(params=["store", "redis"])
async def rates(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[CustomerRates]:
    if request.param == "store":
        yield store.customer_rates
        return
    prefix = f"acf-test:{new_id()}:"
    client = fail_fast_client(SHARED_REDIS)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        if services_required():
            pytest.fail("Redis is not running on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    counters = RedisCustomerRates(SHARED_REDIS, store.customer_rates, key_prefix=prefix)
    try:
        yield counters
    finally:
        await counters.close()
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_hit_counts_the_minute_and_the_day(rates: CustomerRates) -> None:
    first = await rates.hit("acme", Channel.SMS, "+100", T0)
    assert (first.minute, first.prev_minute, first.day) == (1, 0, 1)
    assert first.frac == pytest.approx(0.25)
    second = await rates.hit("acme", Channel.SMS, "+100", T0 + 1000)
    assert (second.minute, second.day) == (2, 2)

    # The next minute: the previous one is read, weighted by what of it is still in reach.
    later = await rates.hit("acme", Channel.SMS, "+100", T0 + MINUTE_MS)
    assert (later.minute, later.prev_minute, later.day) == (1, 2, 3)
    assert later.per_minute == pytest.approx(1 + 2 * 0.75)

    # Two minutes on, the old minute is out of the sliding window.
    far = await rates.peek("acme", Channel.SMS, "+100", T0 + 2 * MINUTE_MS)
    assert (far.minute, far.prev_minute, far.day) == (0, 1, 3)

    # A new UTC day starts at zero.
    tomorrow = await rates.hit("acme", Channel.SMS, "+100", DAY + DAY_MS + 1)
    assert (tomorrow.minute, tomorrow.day) == (1, 1)


async def test_peek_does_not_count(rates: CustomerRates) -> None:
    assert (await rates.peek("acme", Channel.WEB, "ann", T0)).day == 0
    await rates.hit("acme", Channel.WEB, "ann", T0)
    for _ in range(3):
        counts = await rates.peek("acme", Channel.WEB, "ann", T0 + 10)
        assert (counts.minute, counts.day) == (1, 1)


async def test_counts_are_per_tenant_channel_and_customer(rates: CustomerRates) -> None:
    await rates.hit("acme", Channel.WEB, "ann", T0)
    await rates.hit("acme", Channel.WEB, "ann", T0)
    assert (await rates.hit("acme", Channel.SMS, "ann", T0)).day == 1
    assert (await rates.hit("acme", Channel.WEB, "bob", T0)).day == 1
    assert (await rates.hit("globex", Channel.WEB, "ann", T0)).day == 1
    assert (await rates.peek("acme", Channel.WEB, "ann", T0)).day == 2


async def test_prune_drops_the_tenants_old_buckets(store: Store) -> None:
    rates = store.customer_rates
    await rates.hit("acme", Channel.WEB, "ann", T0 - DAY_MS)  # yesterday
    await rates.hit("acme", Channel.WEB, "ann", T0)
    await rates.hit("globex", Channel.WEB, "ann", T0 - DAY_MS)

    # yesterday's minute and day
    assert await rates.prune("acme", DAY) == 2
    assert (await rates.peek("acme", Channel.WEB, "ann", T0)).day == 1
    assert (await rates.peek("acme", Channel.WEB, "ann", T0 - DAY_MS)).day == 0
    assert (await rates.peek("globex", Channel.WEB, "ann", T0 - DAY_MS)).day == 1
    assert await rates.prune("acme", DAY) == 0


async def test_count_customer_adds_and_reads_a_bucket_of_its_own(store: Store) -> None:
    def count(by: int = 1, start: int = DAY) -> CountCustomer:
        return CountCustomer("acme", Channel.WEB, "ann", "cooldown", start, by)

    async def commit(op: CountCustomer) -> int:
        return (await store.uow.commit("acme", [op])).get(op)

    assert await commit(count(by=0)) == 0
    assert await commit(count()) == 1
    assert await commit(count()) == 2
    assert await commit(count(by=0)) == 2
    assert await commit(count(start=DAY + DAY_MS)) == 1
    # its buckets are not the message counts
    assert (await store.customer_rates.peek("acme", Channel.WEB, "ann", DAY + 10)).day == 0


async def test_tallies_read_the_firewalls_own_buckets_in_the_store(
    rates: CustomerRates, store: Store
) -> None:
    """Read without counting, 0 when absent; Redis's are the store's (they live there)."""
    bump = CountCustomer("t1", Channel.WEB, "ann", "refusal", DAY, by=2)
    await store.uow.commit("t1", [bump])
    asked = [("refusal", DAY), ("refusal", DAY - DAY_MS), ("cooldown", DAY)]
    assert await rates.tallies("t1", Channel.WEB, "ann", asked) == [2, 0, 0]
    assert await rates.tallies("t1", Channel.WEB, "ann", asked) == [2, 0, 0]
    assert await rates.tallies("t1", Channel.SMS, "ann", asked) == [0, 0, 0]
    assert await rates.tallies("t2", Channel.WEB, "ann", asked) == [0, 0, 0]


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async for server in private_redis():
        yield server


@pytest.mark.backends("sqlite")
async def test_a_redis_outage_counts_in_the_store_until_redis_is_back(
    store: Store, redis_server: RedisServer
) -> None:
    rates = RedisCustomerRates(redis_server.url, store.customer_rates, retry_after_s=0)
    try:
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 1  # on Redis
        await redis_server.stop()

        # No exception: the store counts meanwhile, and is what peek reads.
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 1
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 2
        assert (await rates.peek("acme", Channel.WEB, "ann", T0)).day == 2
        assert (await store.customer_rates.peek("acme", Channel.WEB, "ann", T0)).day == 2

        await redis_server.start()  # a restarted server: empty, counting again
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 1
        assert (await store.customer_rates.peek("acme", Channel.WEB, "ann", T0)).day == 2
    finally:
        await rates.close()


@pytest.mark.backends("sqlite")
async def test_an_unreachable_redis_falls_back_at_once(store: Store) -> None:
    rates = RedisCustomerRates("redis://127.0.0.1:1/0", store.customer_rates)
    try:
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 1
        # within retry_after_s Redis is not asked again
        assert (await rates.hit("acme", Channel.WEB, "ann", T0)).day == 2
    finally:
        await rates.close()
