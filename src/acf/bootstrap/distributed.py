"""The distributed mode's composition: N API and M worker processes over PostgreSQL, the
single authority (DESIGN §1, §10), with Redis as an optional accelerator.

Every process holds no state of its own that matters: the store is the truth. Wake-ups go
through LISTEN/NOTIFY, or through Redis pub/sub when ``redis_url`` is set (falling back to
NOTIFY while Redis is away); a lost wake-up costs only latency, because workers scan for
unheld work every ``recovery_interval_ms``. The per-tenant message limits count in Redis
when it is set (one budget across the API processes), else per process.
"""

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from opentelemetry.trace import TracerProvider

from acf.adapters.channels.routing import RoutingSender
from acf.adapters.memory.clock import SystemClock
from acf.adapters.outbound_http import outbound_client
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.wakeup import PgWakeUps
from acf.adapters.redis.rate_limits import RedisRateLimitStorage
from acf.adapters.redis.wakeup import RedisWakeUps
from acf.bootstrap.agents import ToolBackends, build_agents
from acf.bootstrap.channels import channel_senders
from acf.bootstrap.service import Service
from acf.config.load import LoadedConfig
from acf.observability.metrics import FabricMetrics
from acf.observability.tracing import PhaseSpans
from acf.ports.clock import Clock
from acf.ports.wakeup import WakeUps
from acf.service.event_feed import EventFeed, Listener, ObservedUnitOfWork
from acf.service.ingress import Ingress
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime import Runtime, RuntimeSettings, SlotSettings


class Role(StrEnum):
    API = "api"
    WORKER = "worker"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class DistributedSettings:
    database_url: str
    redis_url: str | None = None
    pool_size: int = 10
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    recovery_interval_ms: int = 1_000
    slots: SlotSettings = field(default_factory=SlotSettings)
    grace_s: float = 10.0

    @classmethod
    def from_env(cls, database_url: str, redis_url: str | None) -> "DistributedSettings":
        """Settings from the environment (``ACF_DB_POOL_SIZE``, ``ACF_LEASE_TTL_MS``,
        ``ACF_LEASE_RENEW_MS``, ``ACF_RECOVERY_INTERVAL_MS``,
        ``ACF_WORKER_SLOTS``, ``ACF_TENANT_SLOTS``, ``ACF_SHUTDOWN_GRACE_S``)."""

        def number(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected a whole number") from None

        base = LeaseSettings()
        return cls(
            database_url=database_url,
            redis_url=redis_url or None,
            pool_size=number("ACF_DB_POOL_SIZE", 10),
            lease=LeaseSettings(
                ttl_ms=number("ACF_LEASE_TTL_MS", base.ttl_ms),
                renew_every_ms=number("ACF_LEASE_RENEW_MS", base.renew_every_ms),
            ),
            recovery_interval_ms=number("ACF_RECOVERY_INTERVAL_MS", 1_000),
            slots=SlotSettings(
                total=number("ACF_WORKER_SLOTS", 256), per_tenant=number("ACF_TENANT_SLOTS", 64)
            ),
            grace_s=float(number("ACF_SHUTDOWN_GRACE_S", 10)),
        )


async def open_distributed_service(
    loaded: LoadedConfig,
    settings: DistributedSettings,
    role: Role,
    clock: Clock | None = None,
    tracing: TracerProvider | None = None,
) -> Service:
    """Connect to PostgreSQL (schema at head: ``acf db upgrade``) and, if set, Redis, and
    wire one process of ``role``. Call ``start()`` to begin work."""
    clock = clock or SystemClock()
    backends = ToolBackends(outbound_client())
    agents = build_agents(loaded, backends)
    store = await open_pg_store(
        settings.database_url, clock, pool_size=settings.pool_size, name=f"acf-{role.value}"
    )
    metrics = FabricMetrics()
    feed = EventFeed()
    listeners: list[Listener] = [metrics.observe]
    if tracing is not None:
        listeners.append(PhaseSpans(tracing).observe)
    store.uow = ObservedUnitOfWork(store.uow, listeners, on_commit=[feed.wake])
    notify = PgWakeUps(settings.database_url)
    wakeups: WakeUps = notify
    closers: list[Callable[[], Awaitable[None]]] = [notify.close]
    rate_storage = None
    if settings.redis_url:
        redis = RedisWakeUps(settings.redis_url, fallback=notify)
        wakeups = redis
        closers.insert(0, redis.close)
        if role is not Role.WORKER:
            shared = RedisRateLimitStorage(settings.redis_url)
            rate_storage = shared.storage
            closers.append(shared.close)
    ingress = Ingress(agents, store.uow, wakeups, clock)
    senders = channel_senders(loaded, backends.http, email_threads=store.email_threads)
    sender = RoutingSender(senders)
    works = role is not Role.API
    runtime = Runtime(
        store,
        clock,
        agents,
        wakeups,
        sender,
        settings=RuntimeSettings(
            lease=settings.lease,
            recovery_interval_ms=settings.recovery_interval_ms,
            slots=settings.slots,
        ),
    )
    return Service(
        loaded,
        store,
        agents,
        ingress,
        runtime,
        store.api_keys,
        metrics,
        feed,
        backends,
        clock,
        works=works,
        grace_s=settings.grace_s,
        closers=closers,
        rate_storage=rate_storage,
        reachable=sender.reachable,
    )
