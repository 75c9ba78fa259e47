"""The configuration versions this process has built (DESIGN §17), per tenant and number.

- A version is built once, fully, before anything can use it: concurrent callers wait for
  the one build, and a version is published only complete.
- Per tenant, besides the versions its owner keeps (``kept``: the live and canary ones), at
  most ``max_versions`` others stay built (least recently used out), and never one a turn
  holds (``holding``) nor the one just published: a version is closed only when no turn
  uses it. An evicted version's closable pipelines are closed in the background (never a
  static catalog's); ``aclose`` waits for them.
- Each binding it serves knows its version's label (``label_of``) while it is built.
"""

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

from acf.domain.errors import AcfError
from acf.domain.ids import TenantId
from acf.ports.agent_binding import AgentBinding
from acf.ports.config_versions import ConfigVersions
from acf.ports.pipeline import ClosablePipeline
from acf.service.built_version import BuiltVersion, VersionBuilder

log = structlog.get_logger("acf.config")

Key = tuple[TenantId, int]
"""A version: its tenant and number."""


class VersionMissing(AcfError):
    """A session names a configuration version the store does not have."""


class VersionUnbuilt(AcfError):
    """A stored version could not be built (its content no longer loads here)."""


class VersionCache:
    """Built versions by ``(tenant, number)``, bounded per tenant, held while turns run."""

    def __init__(
        self,
        max_versions: int,
        kept: Callable[[], set[Key]],
        static_pipelines: frozenset[int],
    ) -> None:
        self._max = max(1, max_versions)
        self._kept = kept
        self._static = static_pipelines  # id() of pipelines never closed here
        self._versions: ConfigVersions | None = None
        self._builder: VersionBuilder | None = None
        self._built: OrderedDict[Key, BuiltVersion] = OrderedDict()
        self._building: dict[Key, asyncio.Task[BuiltVersion]] = {}
        self._holds: Counter[Key] = Counter()
        self._labels: dict[int, str] = {}  # id(binding) -> its version's label
        self._closing: set[asyncio.Task[None]] = set()

    def use(self, versions: ConfigVersions, builder: VersionBuilder) -> None:
        """Build versions read from ``versions`` with ``builder``."""
        self._versions = versions
        self._builder = builder

    def built(self) -> list[BuiltVersion]:
        """Every version built now, least recently used first."""
        return list(self._built.values())

    # -- labels -----------------------------------------------------------------------

    def label_of(self, binding: AgentBinding) -> str | None:
        """The label of the version ``binding`` belongs to, when it is known here."""
        return self._labels.get(id(binding))

    def mark(self, binding: AgentBinding, label: str) -> None:
        """Record that ``binding`` belongs to the version labelled ``label``."""
        self._labels[id(binding)] = label

    def unmark(self, binding: AgentBinding) -> None:
        self._labels.pop(id(binding), None)

    # -- building ---------------------------------------------------------------------

    def adopt(self, built: BuiltVersion) -> None:
        """Hold ``built`` as its version's build (the same content, not built again)."""
        key = (built.version.tenant, built.version.number)
        if key not in self._built:
            self._publish(key, built)

    async def version(self, tenant: TenantId, number: int) -> BuiltVersion:
        """Version ``number`` of ``tenant``, built (once, whoever asks meanwhile)."""
        key = (tenant, number)
        built = self._built.get(key)
        if built is not None:
            self._built.move_to_end(key)
            return built
        task = self._building.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(key))
            self._building[key] = task
            task.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(task)

    async def _build(self, key: Key) -> BuiltVersion:
        tenant, number = key
        if self._versions is None or self._builder is None:
            raise VersionMissing(f"{tenant}: configuration versions are not served here")
        version = await self._versions.get(tenant, number)
        if version is None:
            raise VersionMissing(f"{tenant}: no configuration version v{number}")
        try:
            built = await self._builder(version)
        except Exception as exc:
            raise VersionUnbuilt(f"{tenant}: v{number} could not be built: {exc!r}") from exc
        self._publish(key, built)  # complete: nothing reads it before this line
        log.info("config.version_built", tenant=tenant, config_version=built.label)
        return built

    def _publish(self, key: Key, built: BuiltVersion) -> None:
        self._built[key] = built
        self._built.move_to_end(key)
        for binding in built.bindings.values():
            self.mark(binding, built.label)
        self._evict(key)

    # -- holding and eviction -----------------------------------------------------------

    @contextmanager
    def holding(self, tenant: TenantId, number: int | None) -> Iterator[None]:
        """While a turn runs on version ``number`` of ``tenant``: it is not evicted (its
        pipelines are not closed under the turn)."""
        if number is None:
            yield
            return
        key = (tenant, number)
        self._holds[key] += 1
        try:
            yield
        finally:
            self._holds[key] -= 1
            if self._holds[key] <= 0:
                del self._holds[key]
                self._evict()

    def _evict(self, published: Key | None = None) -> None:
        """Per tenant, keep the versions ``kept`` names, those held and ``published``, and
        the ``max_versions`` most recently used others; close the rest."""
        keep = self._kept() | set(self._holds)
        if published is not None:
            keep.add(published)
        others: Counter[TenantId] = Counter()
        for key in reversed(list(self._built)):  # most recently used first
            if key in keep:
                continue
            others[key[0]] += 1
            if others[key[0]] <= self._max:
                continue
            built = self._built.pop(key)
            for binding in built.bindings_now():
                self.unmark(binding)
            self._close_later(built)

    def _close_later(self, built: BuiltVersion) -> None:
        closable = [
            p
            for p in built.pipelines()
            if isinstance(p, ClosablePipeline) and id(p) not in self._static
        ]
        if not closable:
            return

        async def close() -> None:
            for pipeline in closable:
                try:
                    await pipeline.aclose()
                except Exception as exc:  # its connections go with the process anyway
                    log.warning("config.close_failed", error=repr(exc))

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Wait for evicted versions' pipelines to close."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
