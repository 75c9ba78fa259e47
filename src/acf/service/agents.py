"""The agents the runtime serves: each tenant's agents with their pipeline and settings,
per configuration version (DESIGN §17).

``Agents(bindings)`` is a static catalog (tests, and the file as loaded): its label,
``config_version``, is the content hash of everything in it. Given the version store and a
builder (``use_versions``), it also serves versions:

- ``get``/``has_tenant``/``has_agent`` answer from each tenant's live version as this
  process last learned it (``refresh``), else from the static catalog;
- ``pinned(session)`` is the binding of the version the session is pinned to, for its
  scenario's step and runtime overrides, labelled ``"v{n}"``;
- a version is built once per content hash, fully, before anything can use it, and kept
  built per tenant as ``service.version_cache`` says (its live and canary versions always,
  never evicting one a turn holds: ``holding``);
- a session whose version cannot serve it (its agent not in it, the version missing or
  unbuildable) is moved to the live version (``unservable``); when the live version cannot
  serve it either, its turn runs ``unserved``: it fails at once, like a pipeline error (the
  fallback reply, a turn record, a dead letter), rather than crashing its driver.
"""

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import structlog

from acf.domain.config_versions import ConfigPointer
from acf.domain.errors import InvalidValue, UnknownAgent, UnknownTenant
from acf.domain.ids import AgentId, TenantId
from acf.domain.policy import ChannelPolicy
from acf.ports.agent_binding import AgentBinding
from acf.ports.config_versions import ConfigVersions
from acf.ports.pipeline import Pipeline
from acf.ports.session_store import SessionRecord
from acf.service import pinning
from acf.service.built_version import BuiltVersion, VersionBuilder, unserved_binding
from acf.service.version_cache import Key, VersionCache, VersionMissing, VersionUnbuilt

__all__ = [
    "MAX_UNSERVED",
    "MAX_VERSIONS",
    "UNSERVABLE",
    "Agents",
    "Pinned",
    "Repin",
    "VersionMissing",
    "VersionUnbuilt",
    "pinned_or_none",
]

log = structlog.get_logger("acf.config")

MAX_VERSIONS = 4
"""Versions kept built per tenant besides its live and canary ones (and those in use)."""

MAX_UNSERVED = 64
"""Stand-in bindings kept for agents no version can serve (``Agents.unserved``)."""

UNSERVABLE: tuple[type[Exception], ...] = (
    UnknownAgent,
    UnknownTenant,
    VersionMissing,
    VersionUnbuilt,
)
"""What ``pinned`` raises when the session's version cannot serve it (not a store outage)."""


@dataclass(frozen=True, slots=True)
class Pinned:
    """What a session's turn runs under: the binding and its version's label."""

    binding: AgentBinding
    config_version: str
    number: int | None = None
    """The version's number; None for the static catalog (the tenant has no version)."""
    scenario_stamp: Mapping[str, str] | None = None
    """The scenario version stamp for the session's state, when it is in a scenario."""


@dataclass(frozen=True, slots=True)
class Repin:
    """A session moving to the live version at its turn's start (``RepinSession``)."""

    from_number: int | None
    to_number: int
    reason: str
    state: dict[str, Any] | None
    """The upcast state that replaces the session's, or None (unchanged)."""


class Agents:
    """Tenant -> agent -> binding, per version. Also the ``Directory`` port for ingress."""

    def __init__(
        self,
        bindings: Mapping[TenantId, Mapping[AgentId, AgentBinding]],
        *,
        max_versions: int = MAX_VERSIONS,
    ) -> None:
        self._bindings = {tenant: dict(agents) for tenant, agents in bindings.items()}
        body = {
            tenant: {agent: b.describe() for agent, b in sorted(agents.items())}
            for tenant, agents in sorted(self._bindings.items())
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        self.config_version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
        """The static catalog's label (its content hash)."""
        self._versions: ConfigVersions | None = None
        self._unserved: OrderedDict[tuple[TenantId, AgentId, str], AgentBinding] = OrderedDict()
        self._live: dict[TenantId, BuiltVersion] = {}
        self._pointers: dict[TenantId, ConfigPointer] = {}
        self._refreshing: dict[TenantId, asyncio.Lock] = {}
        self._rolled_back: dict[Key, tuple[int, bool]] = {}
        static = frozenset(id(b.pipeline) for a in self._bindings.values() for b in a.values())
        self._cache = VersionCache(max_versions, self._kept, static)

    # -- the catalog (the live version as last learned, else the static one) --------

    def use_versions(self, versions: ConfigVersions, builder: VersionBuilder) -> None:
        """Serve versions from ``versions``, built by ``builder`` (the composition root)."""
        self._versions = versions
        self._cache.use(versions, builder)

    @property
    def versioned(self) -> bool:
        return self._versions is not None

    def _catalog(self, tenant: TenantId) -> Mapping[AgentId, AgentBinding] | None:
        built = self._live.get(tenant)
        return built.bindings if built is not None else self._bindings.get(tenant)

    def channel_policies(self) -> list[ChannelPolicy]:
        """Every channel policy of every binding this process serves (each version it
        built): the idle-close sweep's floor is the shortest timeout among them."""
        bindings = [b for agents in self._bindings.values() for b in agents.values()]
        bindings += [b for built in self._cache.built() for b in built.bindings.values()]
        return [p for b in bindings for p in b.settings.channel_policies.values()]

    def pipelines(self) -> list[Pipeline]:
        """Every agent's pipeline, of every version built (listed once each)."""
        seen: dict[int, Pipeline] = {}
        for agents in self._bindings.values():
            for binding in agents.values():
                seen.setdefault(id(binding.pipeline), binding.pipeline)
        for built in self._cache.built():
            for pipeline in built.pipelines():
                seen.setdefault(id(pipeline), pipeline)
        return list(seen.values())

    def tenants(self) -> list[TenantId]:
        return sorted({*self._bindings, *self._live, *self._pointers})

    def has_tenant(self, tenant: TenantId) -> bool:
        return self._catalog(tenant) is not None

    def has_agent(self, tenant: TenantId, agent: AgentId) -> bool:
        return agent in (self._catalog(tenant) or {})

    def get(self, tenant: TenantId, agent: AgentId) -> AgentBinding:
        catalog = self._catalog(tenant)
        if catalog is None:
            raise UnknownTenant(tenant)
        try:
            return catalog[agent]
        except KeyError:
            raise UnknownAgent(tenant, agent) from None

    def file_bindings(self, tenant: TenantId) -> Mapping[AgentId, AgentBinding]:
        """The static catalog's agents of ``tenant`` (the file as loaded)."""
        return self._bindings.get(tenant, {})

    def label(self, tenant: TenantId) -> str:
        """The label of the tenant's live version, as last learned (else the catalog's)."""
        built = self._live.get(tenant)
        return built.label if built is not None else self.config_version

    def label_of(self, binding: AgentBinding) -> str:
        """The label of the version ``binding`` belongs to."""
        label = self._cache.label_of(binding)
        return self.config_version if label is None else label

    def pointer(self, tenant: TenantId) -> ConfigPointer | None:
        """The tenant's pointer as last learned."""
        return self._pointers.get(tenant)

    # -- versions ---------------------------------------------------------------------

    def adopt(self, built: BuiltVersion) -> None:
        """Hold ``built`` as its version's build (made by the composition root from the
        file it just pushed: the same content, so it need not be built again)."""
        self._cache.adopt(built)

    async def version(self, tenant: TenantId, number: int) -> BuiltVersion:
        """Version ``number`` of ``tenant``, built (once, whoever asks meanwhile)."""
        return await self._cache.version(tenant, number)

    def holding(self, tenant: TenantId, number: int | None) -> AbstractContextManager[None]:
        """While a turn runs on version ``number`` of ``tenant``: it is not evicted (its
        pipelines are not closed under the turn)."""
        return self._cache.holding(tenant, number)

    def _kept(self) -> set[Key]:
        """The versions kept built whatever their use: each tenant's live and canary ones
        (as its pointer says, and as served)."""
        numbers = [(t, n) for t, p in self._pointers.items() for n in (p.live, p.canary)]
        keep = {(t, n) for t, n in numbers if n is not None}
        return keep | {(t, b.version.number) for t, b in self._live.items()}

    async def refresh(self, tenant: TenantId) -> None:
        """Read the tenant's pointer again and serve its live version (built first; the
        canary's too). A version that fails to build is logged and the previous one kept:
        never half-applied."""
        if self._versions is None:
            return
        lock = self._refreshing.setdefault(tenant, asyncio.Lock())
        async with lock:
            pointer = await self._versions.pointer(tenant)
            if pointer is None or pointer.live is None:
                self._pointers.pop(tenant, None)
                self._live.pop(tenant, None)
                return
            # Reads are serialised by the lock: this one is the newest (no timestamp
            # comparison: the clocks of the processes that wrote the pointer may differ).
            previous = self._live.get(tenant)
            try:
                with self.holding(tenant, pointer.live), self.holding(tenant, pointer.canary):
                    live = await self.version(tenant, pointer.live)
                    if pointer.canary is not None:
                        await self.version(tenant, pointer.canary)
                    # Served before the holds end, so the versions stay kept.
                    self._pointers[tenant] = pointer
                    self._live[tenant] = live
            except Exception as exc:
                log.error(
                    "config.version_unbuilt",
                    tenant=tenant,
                    live=pointer.live,
                    canary=pointer.canary,
                    error=repr(exc),
                )
                return
            if previous is not live:
                log.info("config.live", tenant=tenant, config_version=live.label)

    async def refresh_all(self) -> None:
        for tenant in self.tenants():
            await self.refresh(tenant)

    async def aclose(self) -> None:
        """Wait for evicted versions' pipelines to close."""
        await self._cache.aclose()

    # -- sessions ---------------------------------------------------------------------

    async def pinned(self, session: SessionRecord) -> Pinned:
        """The binding of the session's pinned version for its scenario's step and runtime
        overrides (a variant that does not fit is logged and the agent's own binding
        served). Without versions: the live version's, else the static catalog's."""
        tenant, agent = session.tenant, session.key.agent
        built: BuiltVersion | None = None
        if self._versions is not None:
            if session.config_version is not None:
                built = await self.version(tenant, session.config_version)
            else:
                built = self._live.get(tenant)
        if built is None:
            binding = self.get(tenant, agent)
            return Pinned(binding, self.label_of(binding))
        scenario, step = pinning.scenario_of(session.state)
        overrides = pinning.overrides_of(session.state)
        try:
            binding = built.binding(agent, scenario, step, overrides)
        except UnknownAgent:
            raise
        except InvalidValue as exc:
            log.warning(
                "config.variant_refused",
                tenant=tenant,
                session_id=session.session_id,
                config_version=built.label,
                scenario=scenario,
                step=step,
                error=str(exc),
            )
            binding = built.binding(agent)
        self._cache.mark(binding, built.label)
        stamp = None
        if scenario is not None and (digest := built.scenario_hash(agent, scenario)):
            stamp = pinning.scenario_stamp(built.label, scenario, digest)
        return Pinned(binding, built.label, built.version.number, stamp)

    async def repin(self, session: SessionRecord) -> Repin | None:
        """Whether the session moves to the live version at this turn's start (pure rule:
        ``service.pinning``), with its upcast state when the move migrates it."""
        pointer = self._pointers.get(session.tenant)
        if self._versions is None or pointer is None or pointer.live is None:
            return None
        pinned = session.config_version
        if pinned == pointer.live:
            return None
        live = self._live.get(session.tenant)
        if live is None:
            return None
        rolled_back = False
        if pinned is not None and pinned != pointer.canary:
            rolled_back = await self._is_rolled_back(session.tenant, pinned, pointer)
        view = pinning.VersionView(pointer.live, live.version.apply, pointer.canary)
        reason = pinning.repin_reason(pinned, rolled_back, view)
        if reason is None:
            return None
        state = None
        if pinning.upcasts(reason) and live.upcaster is not None:
            state = live.upcaster(session.state)
        return Repin(pinned, pointer.live, reason, state)

    def unservable(self, session: SessionRecord) -> Repin | None:
        """The move to the live version (as last learned) of a session whose version cannot
        serve it (``UNSERVABLE``); None when it is on the live version already, or the
        tenant has none. Its state is kept as it is."""
        pointer = self._pointers.get(session.tenant)
        if self._versions is None or pointer is None or pointer.live is None:
            return None
        if session.config_version == pointer.live:
            return None
        reason = pinning.RepinReason.UNSERVABLE
        return Repin(session.config_version, pointer.live, reason, None)

    def unserved(self, session: SessionRecord, error: Exception) -> Pinned:
        """What a turn of a session no version can serve runs: a binding whose pipeline
        fails at once (``unserved_binding``), labelled with the session's version."""
        tenant, agent, number = session.tenant, session.key.agent, session.config_version
        label = self.label(tenant) if number is None else f"v{number}"
        key = (tenant, agent, label)
        binding = self._unserved.get(key)
        if binding is None:
            binding = unserved_binding(f"{tenant}/{agent} cannot be served by {label}: {error}")
            self._unserved[key] = binding
            if len(self._unserved) > MAX_UNSERVED:
                _, old = self._unserved.popitem(last=False)
                self._cache.unmark(old)
        self._cache.mark(binding, label)
        return Pinned(binding, label, number)

    async def _is_rolled_back(self, tenant: TenantId, number: int, pointer: ConfigPointer) -> bool:
        """Read once per pointer change: a version is rolled back only when the pointer
        moves, and never un-rolled back."""
        key = (tenant, number)
        known = self._rolled_back.get(key)
        if known is not None and (known[1] or known[0] == pointer.updated_at_ms):
            return known[1]
        assert self._versions is not None
        version = await self._versions.get(tenant, number)
        rolled_back = version is None or version.rolled_back
        self._rolled_back[key] = (pointer.updated_at_ms, rolled_back)
        return rolled_back


async def pinned_or_none(agents: Agents, session: SessionRecord) -> Pinned | None:
    """The session's pinned binding, or None when it cannot be had (its agent gone from the
    version, the store away): for records and settings read outside a turn (deliveries,
    statuses), which must not fail for it."""
    try:
        return await agents.pinned(session)
    except Exception as exc:
        log.info("config.pinned_unread", tenant=session.tenant, error=repr(exc))
        return None
