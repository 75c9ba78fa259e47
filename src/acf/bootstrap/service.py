"""The service `acf serve` runs, and the composition root that wires it: configuration and
settings in, the runtime, ingress, API keys, metrics and event feed out, over one data
directory (``acf.bootstrap.embedded``) or one PostgreSQL database
(``acf.bootstrap.distributed``)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from limits.aio.storage import Storage
from opentelemetry.trace import TracerProvider

from acf.adapters.channels.routing import RoutingSender
from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.drafts import InProcessDraftBus
from acf.adapters.outbound_http import outbound_client
from acf.adapters.sqlite.database import Durability
from acf.bootstrap.agents import ToolBackends, build_agents
from acf.bootstrap.builtin_tools import BuiltinTools
from acf.bootstrap.channels import channel_senders
from acf.bootstrap.embedded import open_embedded_backend
from acf.bootstrap.settings import AcfSettings
from acf.config.load import LoadedConfig
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.observability.metrics import FabricMetrics
from acf.observability.tracing import PhaseSpans
from acf.ports.api_keys import ApiKeys
from acf.ports.clock import Clock
from acf.ports.drafts import DraftBus
from acf.ports.pipeline import ClosablePipeline
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.delivery_statuses import DeliveryStatuses
from acf.service.event_feed import EventFeed, Listener, ObservedUnitOfWork
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.service.status_rechecks import StatusRechecks


@dataclass(slots=True)
class Service:
    """Everything `acf serve` runs. ``works``: this process runs turns and deliveries
    (embedded, or a distributed ``worker``/``all``); an ``api`` process only takes
    messages in and answers reads."""

    loaded: LoadedConfig
    store: Store
    agents: Agents
    ingress: Ingress
    runtime: Runtime
    api_keys: ApiKeys
    metrics: FabricMetrics
    feed: EventFeed
    backends: ToolBackends
    clock: Clock
    works: bool = True
    grace_s: float = 0.0
    """How long ``close`` lets running turns finish before cutting them off."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Closed after the runtime, before the store (wake-ups, rate-limit storage)."""
    rate_storage: Storage | None = None
    """A shared ``limits`` storage for the per-tenant limits (Redis), if any."""
    reachable: Callable[[TenantId], frozenset[Channel]] | None = None
    """The channels each tenant's replies can leave on (the configured senders)."""
    rechecks: StatusRechecks | None = None
    """Statuses that came before the relay recorded their reply (made on first use)."""
    drafts: DraftBus = field(default_factory=InProcessDraftBus)
    """Where running turns publish their drafts and session streams read them."""

    @property
    def statuses(self) -> DeliveryStatuses:
        """Where providers' delivery statuses are applied to the replies they name; a
        process that delivers sends a fallback copy at once (else a worker's scan does)."""
        poke = self.runtime.parts.poke_relay if self.works else None
        if self.rechecks is None:
            self.rechecks = StatusRechecks(self.clock)
        return DeliveryStatuses(
            self.store, self.agents, self.clock, poke, self.reachable, self.rechecks
        )

    async def start(self) -> None:
        if self.works:
            await self.runtime.start()

    async def close(self) -> None:
        try:
            if self.rechecks is not None:
                await self.rechecks.close()
            await self.runtime.stop(self.grace_s)
        finally:
            try:
                for close in self.closers:
                    await close()
                for pipeline in self.agents.pipelines():
                    if isinstance(pipeline, ClosablePipeline):
                        await pipeline.aclose()  # its model client's connections
            finally:
                await self.store.close()
                await self.backends.http.aclose()


async def open_service(
    loaded: LoadedConfig,
    settings: AcfSettings,
    *,
    builtin_tools: BuiltinTools | None = None,
    clock: Clock | None = None,
    durability: Durability = Durability.FULL,
    tracing: TracerProvider | None = None,
) -> Service:
    """The composition root: the embedded backend in ``settings.data_dir`` (created on first
    run), or with ``settings.database_url`` one process of the distributed mode (its
    ``role``), wired with the runtime, ingress, metrics and event feed. Call ``start()`` to
    begin work. ``builtin_tools``: the tool sets configurations may name (``builtin:``);
    with ``tracing``, every turn's phases become OpenTelemetry spans."""
    clock = clock or SystemClock()
    backends = ToolBackends(outbound_client(), builtin_tools or BuiltinTools())
    try:
        agents = build_agents(loaded, backends)
        drafts: DraftBus
        if settings.database_url is None:
            backend = await open_embedded_backend(settings.data_dir, clock, durability)
            drafts = InProcessDraftBus()
        else:  # imported here: the embedded mode needs neither PostgreSQL nor Redis
            from acf.bootstrap.distributed import distributed_drafts, open_distributed_backend

            backend = await open_distributed_backend(settings.database_url, settings, clock)
            drafts, close_drafts = distributed_drafts(settings.database_url, settings)
            backend.closers[:0] = close_drafts
    except BaseException:
        await backends.http.aclose()
        raise
    store = backend.store
    metrics = FabricMetrics()
    feed = EventFeed()
    listeners: list[Listener] = [metrics.observe]
    if tracing is not None:
        listeners.append(PhaseSpans(tracing).observe)
    store.uow = ObservedUnitOfWork(store.uow, listeners, on_commit=[feed.wake])
    ingress = Ingress(agents, store.uow, backend.wakeups, clock)
    senders = channel_senders(loaded, backends.http, email_threads=store.email_threads)
    sender = RoutingSender(senders)
    runtime = Runtime(
        store, clock, agents, backend.wakeups, sender, settings=backend.runtime, drafts=drafts
    )
    return Service(
        loaded,
        store,
        agents,
        ingress,
        runtime,
        backend.api_keys,
        metrics,
        feed,
        backends,
        clock,
        works=backend.works,
        grace_s=backend.grace_s,
        closers=backend.closers,
        rate_storage=backend.rate_storage,
        reachable=sender.reachable,
        drafts=drafts,
    )
