"""The cache of built configuration versions (``acf.service.agents.Agents``) over a real
SQLite store with many tenants (review of issue 21, bug 2): the bound is per tenant, so a
version built for a pinned session stays built however many tenants the process serves,
and a version a turn holds is neither evicted nor closed under it."""

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.adapters.sqlite import open_sqlite_store
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode, ConfigVersion
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.ports.agent_binding import AgentBinding
from acf.ports.config_versions import PromoteVersion, PushVersion
from acf.ports.pipeline import TurnContext
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.built_version import BuiltVersion
from acf.testing import VirtualClock

AGENT = "support"
TENANTS = [f"t{n:02d}" for n in range(20)]


class Closable:
    """A pipeline holding a connection: ``closed`` once ``aclose`` ran."""

    name = "closable"
    version = "1"

    def __init__(self) -> None:
        self.closed = False

    async def run(self, ctx: TurnContext) -> PipelineResult:
        assert not self.closed, "ran on a closed pipeline"
        return PipelineResult.reply("ok")

    async def aclose(self) -> None:
        self.closed = True


class CountingBuilds:
    """A ``VersionBuilder`` counting the builds of each version."""

    def __init__(self) -> None:
        self.count: Counter[tuple[str, int]] = Counter()
        self.pipelines: dict[tuple[str, int], list[Closable]] = {}

    async def __call__(self, version: ConfigVersion) -> BuiltVersion:
        key = (version.tenant, version.number)
        self.count[key] += 1
        pipeline = Closable()
        self.pipelines.setdefault(key, []).append(pipeline)
        return BuiltVersion(version, {AGENT: AgentBinding(pipeline, AgentSettings())})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "acf.db", VirtualClock())
    try:
        yield opened
    finally:
        await opened.close()


async def versions(store: Store, tenant: str, count: int, live: int) -> None:
    for n in range(1, count + 1):
        op = PushVersion(
            tenant,
            f"sha256:{n:016x}",
            {"format": 1, "tenant": tenant, "body": {"n": n}},
            {"agents": {AGENT: {}}},
            {},
            "test",
            f"v{n}",
            None,
            ApplyMode.SESSION_CLOSE,
            1_000 + n,
        )
        await store.uow.commit(tenant, [op])
    await store.uow.commit(tenant, [PromoteVersion(tenant, live, 2_000, "test")])


def pinned_to(tenant: str, number: int) -> SessionRecord:
    key = SessionKey(tenant, AGENT, f"customer-{number}", Channel.WEB)
    return SessionRecord(
        f"{tenant}-s{number}", key, SessionStatus.OPEN, 1, 0, {}, 0, False, None, 0, 0,
        config_version=number,
    )  # fmt: skip


async def served(store: Store, builds: CountingBuilds) -> Agents:
    agents = Agents({})
    agents.use_versions(store.config_versions, builds)
    for tenant in TENANTS:
        await agents.refresh(tenant)
    return agents


async def test_a_pinned_old_version_is_built_once_among_twenty_tenants(store: Store) -> None:
    for tenant in TENANTS:
        await versions(store, tenant, 2, live=2)
    builds = CountingBuilds()
    agents = await served(store, builds)
    old = pinned_to(TENANTS[0], 1)
    for _ in range(5):  # five turns of a session pinned to v1, the pointers re-read between
        pinned = await agents.pinned(old)
        assert pinned.config_version == "v1"
        with agents.holding(old.tenant, pinned.number):
            pass
        for tenant in TENANTS:
            await agents.refresh(tenant)
    assert builds.count[(TENANTS[0], 1)] == 1
    assert all(builds.count[(tenant, 2)] == 1 for tenant in TENANTS)  # each live once
    await agents.aclose()
    assert not builds.pipelines[(TENANTS[0], 1)][0].closed


async def test_a_held_version_is_closed_only_after_its_turn_ends(store: Store) -> None:
    tenant = TENANTS[0]
    await versions(store, tenant, 7, live=7)
    builds = CountingBuilds()
    agents = Agents({}, max_versions=4)
    agents.use_versions(store.config_versions, builds)
    await agents.refresh(tenant)

    first = await agents.pinned(pinned_to(tenant, 1))
    (pipeline,) = builds.pipelines[(tenant, 1)]
    with agents.holding(tenant, first.number):  # a turn runs on v1 meanwhile
        for number in range(2, 7):  # five other versions built: v1 is the least recent
            await agents.pinned(pinned_to(tenant, number))
        await agents.aclose()
        assert not pipeline.closed
        assert first.binding.pipeline is pipeline
    await agents.aclose()  # the turn ended: v1 is evicted and closed now
    assert pipeline.closed
    assert builds.count[(tenant, 1)] == 1
    # v2 (the least recently used unheld one) went when v6 came; v3..v6 and live v7 stay.
    assert builds.pipelines[(tenant, 2)][0].closed
    assert not any(builds.pipelines[(tenant, n)][0].closed for n in range(3, 8))
