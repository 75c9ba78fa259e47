"""The distributed backend: N API and M worker processes over PostgreSQL, the single
authority (DESIGN §1, §10), with Redis as an optional accelerator.

Every process holds no state of its own that matters: the store is the truth. Wake-ups go
through LISTEN/NOTIFY, or through Redis pub/sub when ``redis_url`` is set (falling back to
NOTIFY while Redis is away); a lost wake-up costs only latency, because workers scan for
unheld work every ``recovery_interval_ms``. The per-tenant message limits count in Redis
when it is set (one budget across the API processes), else per process; the firewall's
per-customer counters count in Redis when it is set, else in PostgreSQL. Drafts (DESIGN
§16) cross processes the same way: NOTIFY, or Redis with NOTIFY as the fallback.
"""

from collections.abc import Awaitable, Callable

from limits.aio.storage import Storage

from acf.adapters.memory.drafts import InProcessDraftBus
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.drafts import PgDraftBus
from acf.adapters.postgres.wakeup import PgWakeUps
from acf.adapters.redis.customer_rates import RedisCustomerRates
from acf.adapters.redis.drafts import RedisDraftBus
from acf.adapters.redis.rate_limits import RedisRateLimitStorage
from acf.adapters.redis.wakeup import RedisWakeUps
from acf.bootstrap.backend import Backend
from acf.bootstrap.settings import AcfSettings, Role
from acf.ports.clock import Clock
from acf.ports.drafts import DraftBus
from acf.ports.wakeup import WakeUps


async def open_distributed_backend(
    database_url: str, settings: AcfSettings, clock: Clock
) -> Backend:
    """Connect to PostgreSQL (schema at head: ``acf db upgrade``) and, if set, Redis, for
    one process of ``settings.role``."""
    role = settings.role
    store = await open_pg_store(
        database_url, clock, pool_size=settings.db_pool_size, name=f"acf-{role.value}"
    )
    notify = PgWakeUps(database_url)
    wakeups: WakeUps = notify
    closers: list[Callable[[], Awaitable[None]]] = [notify.close]
    rate_storage: Storage | None = None
    if settings.redis_url:
        redis = RedisWakeUps(settings.redis_url, fallback=notify)
        wakeups = redis
        closers.insert(0, redis.close)
        # Every process counts (ingress in API processes, refusals in workers): on Redis,
        # with the store's counters while Redis is away.
        counters = RedisCustomerRates(settings.redis_url, fallback=store.customer_rates)
        store.customer_rates = counters
        closers.append(counters.close)
        if role is not Role.WORKER:
            shared = RedisRateLimitStorage(settings.redis_url)
            rate_storage = shared.storage
            closers.append(shared.close)
    return Backend(
        store,
        wakeups,
        store.api_keys,
        works=role is not Role.API,
        runtime=settings.runtime,
        grace_s=settings.shutdown_grace_s,
        closers=closers,
        rate_storage=rate_storage,
    )


def distributed_drafts(
    database_url: str, settings: AcfSettings
) -> tuple[DraftBus, list[Callable[[], Awaitable[None]]]]:
    """The drafts' bus of one process, and its closers (in order). It connects only when
    used: a worker publishes, an API process listens once a stream asks for drafts."""
    local = InProcessDraftBus()
    notify = PgDraftBus(database_url, local=local)
    if not settings.redis_url:
        return notify, [notify.close]
    redis = RedisDraftBus(settings.redis_url, notify, local)
    return redis, [redis.close, notify.close]
