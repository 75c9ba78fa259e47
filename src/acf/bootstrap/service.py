"""The service `acf serve` runs, and the composition root that wires it: configuration and
settings in, the runtime, ingress, API keys, metrics and event feed out, over one data
directory (``acf.bootstrap.embedded``) or one PostgreSQL database
(``acf.bootstrap.distributed``).

Configuration versions (DESIGN §17): the agents serve each tenant's live version and each
session's pinned one, built from the store (``acf.bootstrap.versions``). A pointer change
reaches every process through ``config_changes`` (in-process, or LISTEN/NOTIFY on
``acf_config`` in the distributed mode), and every ``config_refresh_s`` each process reads
its tenants' pointers again; ``serve_file_versions`` is what ``acf serve`` does at start.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from limits.aio.storage import Storage
from opentelemetry.trace import TracerProvider

from acf.adapters.channels.routing import RoutingSender
from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.config_changes import InProcessConfigChanges
from acf.adapters.memory.drafts import InProcessDraftBus
from acf.adapters.outbound_http import outbound_client
from acf.adapters.sqlite.database import Durability
from acf.bootstrap.agents import ToolBackends, build_agents
from acf.bootstrap.builtin_tools import BuiltinTools
from acf.bootstrap.channels import channel_senders
from acf.bootstrap.embedded import open_embedded_backend
from acf.bootstrap.settings import AcfSettings, ConfigSource
from acf.bootstrap.versions import (
    VersionBuilds,
    adopt_file_versions,
    keep_fresh,
    sync_file_versions,
)
from acf.config.load import LoadedConfig
from acf.config.people import people_policy
from acf.domain.channels import Channel
from acf.domain.handoff import PeoplePolicies, PeoplePolicy, default_policies
from acf.domain.ids import TenantId
from acf.observability.config_metrics import ConfigMetrics
from acf.observability.metrics import FabricMetrics
from acf.observability.tracing import PhaseSpans
from acf.ports.api_keys import ApiKeys
from acf.ports.clock import Clock
from acf.ports.config_changes import ConfigChanges
from acf.ports.drafts import DraftBus
from acf.ports.pipeline import ClosablePipeline
from acf.ports.store import Store
from acf.ports.wakeup import WakeUps
from acf.service.agents import Agents
from acf.service.canary import CHECK_EVERY_S, CanaryWatch
from acf.service.delivery_statuses import DeliveryStatuses
from acf.service.event_feed import EventFeed, Listener, ObservedUnitOfWork
from acf.service.firewall import Firewall
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
    config_changes: ConfigChanges = field(default_factory=InProcessConfigChanges)
    """Where a pointer change is announced (``announce(tenant)``), to every process."""
    builds: VersionBuilds | None = None
    """How this process builds configuration versions (None: it serves the file only)."""
    config_refresh_s: float = 5.0
    canary: CanaryWatch | None = None
    """Judges running canaries (working processes only): rollback, next share, promote."""
    people: PeoplePolicies = default_policies
    """Each tenant's ``handoff:`` and ``firewall:`` policy."""
    wakeups: WakeUps | None = None
    """Where a session is woken (for writes made outside ingress: an operator's action)."""
    firewall: Firewall | None = None
    """The abuse firewall: ingress's detectors, the turns' refusals, blocks and lifts."""
    _refreshing: "asyncio.Task[None] | None" = None

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

    async def serve_file_versions(self, mode: ConfigSource = ConfigSource.FILE) -> None:
        """``acf serve``'s start: push each tenant of the file as a version and promote it
        per ``mode`` (``ACF_CONFIG_SOURCE``), then tell every process."""
        if self.builds is None:
            return
        pushed = await sync_file_versions(self.store, self.loaded, mode, self.clock)
        files = {tenant: self.agents.file_bindings(tenant) for tenant in pushed}
        adopt_file_versions(self.agents, self.builds, self.loaded, pushed, files)
        for tenant in pushed:
            await self.config_changes.announce(tenant)

    async def start(self) -> None:
        if self.builds is not None:
            await self.agents.refresh_all()  # before any turn: the live versions
            start = getattr(self.config_changes, "start", None)
            if start is not None:
                await start()  # listening before anything can be missed
            self._refreshing = asyncio.get_running_loop().create_task(
                keep_fresh(self.agents, self.clock, self.config_refresh_s), name="config-refresh"
            )
        if self.works:
            await self.runtime.start()
            if self.canary is not None:
                await self.canary.start()

    async def close(self) -> None:
        try:
            if self.canary is not None:
                await self.canary.stop()
            if self._refreshing is not None:
                self._refreshing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._refreshing
            if self.rechecks is not None:
                await self.rechecks.close()
            await self.runtime.stop(self.grace_s)
        finally:
            try:
                for close in self.closers:
                    await close()
                await self.agents.aclose()
                for pipeline in self.agents.pipelines():
                    if isinstance(pipeline, ClosablePipeline):
                        await pipeline.aclose()  # its model client's connections
            finally:
                if self.builds is not None:
                    self.builds.close()
                await self.store.close()
                await self.backends.http.aclose()


def people_policies(loaded: LoadedConfig) -> PeoplePolicies:
    """Each tenant's ``handoff:`` and ``firewall:`` from the served file (a tenant it does not
    name gets the defaults)."""
    policies = {
        tenant: people_policy(fields.handoff, fields.firewall)
        for tenant, fields in loaded.config.tenants.items()
    }

    def of(tenant: TenantId) -> PeoplePolicy:
        return policies.get(tenant) or PeoplePolicy()

    return of


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
    builds = VersionBuilds(backends)
    try:
        agents = build_agents(loaded, backends, builds.sets)
        drafts: DraftBus
        changes: ConfigChanges
        if settings.database_url is None:
            backend = await open_embedded_backend(settings.data_dir, clock, durability)
            drafts = InProcessDraftBus()
            changes = InProcessConfigChanges()
        else:  # imported here: the embedded mode needs neither PostgreSQL nor Redis
            from acf.adapters.postgres.config_changes import PgConfigChanges
            from acf.bootstrap.distributed import distributed_drafts, open_distributed_backend

            backend = await open_distributed_backend(settings.database_url, settings, clock)
            drafts, close_drafts = distributed_drafts(settings.database_url, settings)
            notify = PgConfigChanges(settings.database_url)
            changes = notify
            backend.closers[:0] = [notify.close, *close_drafts]
    except BaseException:
        await backends.http.aclose()
        raise
    store = backend.store
    agents.use_versions(store.config_versions, builds)
    changes.subscribe(agents.refresh)
    metrics = FabricMetrics()
    feed = EventFeed()
    listeners: list[Listener] = [metrics.observe]
    if tracing is not None:
        listeners.append(PhaseSpans(tracing).observe)
    store.uow = ObservedUnitOfWork(store.uow, listeners, on_commit=[feed.wake])
    people = people_policies(loaded)
    firewall = Firewall(store, clock, people, store.customer_rates, wake=backend.wakeups.notify)
    ingress = Ingress(agents, store.uow, backend.wakeups, clock, firewall)
    senders = channel_senders(loaded, backends.http, email_threads=store.email_threads)
    sender = RoutingSender(senders)
    runtime = Runtime(
        store,
        clock,
        agents,
        backend.wakeups,
        sender,
        settings=backend.runtime,
        drafts=drafts,
        people=people,
        policy_blocks=firewall,
        people_metrics=metrics.people,
    )
    every = min((t.canary.check_every_s for t in loaded.config.tenants.values()), default=None)
    canary = CanaryWatch(
        store,
        clock,
        changes,
        agents.tenants,
        metrics=ConfigMetrics(metrics.registry),
        check_every_s=every or CHECK_EVERY_S,
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
        config_changes=changes,
        builds=builds,
        config_refresh_s=settings.config_refresh_s,
        canary=canary if backend.works else None,
        people=people,
        wakeups=backend.wakeups,
        firewall=firewall,
    )
