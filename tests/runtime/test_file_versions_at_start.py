"""What `acf serve` makes live at start (``sync_file_versions``), on a real SQLite store,
across restarts (review of issue 21, bug 5): with ``ACF_CONFIG_SOURCE=file`` the file's
version is promoted only when the file changed since it was last pushed (or the tenant has
no live version); a restart with the same file keeps what the lifecycle made live."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.adapters.sqlite import open_sqlite_store
from acf.bootstrap.settings import ConfigSource
from acf.bootstrap.versions import promotes_at_start, sync_file_versions
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.config_versions import ApplyMode, ConfigVersion, VersionStatus
from acf.ports.config_versions import PromoteVersion, PushVersion, RollbackLive, StartCanary
from acf.ports.store import Store
from acf.testing import VirtualClock

TENANT = "acme"


def document(reply: str) -> dict[str, Any]:
    rules = {
        "fallback": reply,
        "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": reply}],
    }
    agents = {"support": {"pipeline": {"kind": "rules", "rules": rules}}}
    return {"version": 1, "tenants": {TENANT: {"agents": agents}}}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield opened
    finally:
        await opened.close()


class Serve:
    """`acf serve` starting over and over with the file at ``path``."""

    def __init__(self, store: Store, clock: VirtualClock, path: Path) -> None:
        self.store, self.clock, self.path = store, clock, path

    async def start(self, reply: str, mode: ConfigSource = ConfigSource.FILE) -> int:
        """Write the file (answering ``reply``), start; the pushed version's number."""
        self.path.write_text(yaml.safe_dump(document(reply)), encoding="utf-8")
        self.clock.advance(1_000)
        pushed = await sync_file_versions(self.store, load_config(self.path), mode, self.clock)
        return pushed[TENANT].number

    async def live(self) -> int | None:
        pointer = await self.store.config_versions.pointer(TENANT)
        return None if pointer is None else pointer.live

    async def commit(self, op: Any) -> None:
        await self.store.uow.commit(TENANT, [op])


async def api_push(serve: Serve, tmp_path: Path, reply: str) -> int:
    """A version pushed through the lifecycle (not by `acf serve`)."""
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(document(reply)), encoding="utf-8")
    source = version_sources(load_config(other))[TENANT]
    op = PushVersion(
        TENANT,
        source.content_hash,
        source.source,
        source.resolved,
        source.provenance,
        "ann",
        "through the API",
        None,
        ApplyMode(source.apply),
        serve.clock.now_ms(),
    )
    number: int = (await serve.store.uow.commit(TENANT, [op])).get(op).version.number
    return number


async def test_a_restart_keeps_what_the_lifecycle_made_live(
    store: Store, clock: VirtualClock, tmp_path: Path
) -> None:
    serve = Serve(store, clock, tmp_path / "acf.yaml")
    assert await serve.start("one") == 1
    assert await serve.live() == 1  # the tenant had no live version

    two = await api_push(serve, tmp_path, "two")
    await serve.commit(PromoteVersion(TENANT, two, clock.now_ms(), "ann", forced=True))
    assert await serve.start("one") == 1  # the same file: not changed since last pushed
    assert await serve.live() == two  # the promote through the API stays

    three = await api_push(serve, tmp_path, "three")
    await serve.commit(StartCanary(TENANT, three, 10, clock.now_ms(), "ann"))
    await serve.start("one")
    pointer = await store.config_versions.pointer(TENANT)
    assert pointer is not None and (pointer.live, pointer.canary) == (two, three)

    # The file changes: its new version is promoted (the canary ends with the promote).
    four = await serve.start("four")
    assert four == 4 and await serve.live() == four
    await serve.commit(RollbackLive(TENANT, clock.now_ms(), "ann", "bad replies"))
    assert await serve.live() == two
    await serve.start("four")  # the rolled-back file again: the rollback stays
    assert await serve.live() == two


async def test_the_store_source_only_seeds_a_tenant_without_a_live_version(
    store: Store, clock: VirtualClock, tmp_path: Path
) -> None:
    serve = Serve(store, clock, tmp_path / "acf.yaml")
    assert await serve.start("one", ConfigSource.STORE) == 1
    assert await serve.live() == 1
    assert await serve.start("two", ConfigSource.STORE) == 2  # pushed, a draft
    assert await serve.live() == 1


def version(status: VersionStatus) -> ConfigVersion:
    return ConfigVersion(
        TENANT, 3, "sha256:0", {}, {}, {}, "acf serve", "", None, ApplyMode.SESSION_CLOSE,
        status, False, 0, 0, {},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "created", "status", "promotes"),
    [
        (ConfigSource.FILE, True, VersionStatus.DRAFT, True),  # the file changed
        (ConfigSource.FILE, False, VersionStatus.DRAFT, True),  # pushed, never promoted
        (ConfigSource.FILE, False, VersionStatus.RETIRED, False),  # replaced through the API
        (ConfigSource.FILE, False, VersionStatus.CANARY, False),  # on canary: it stays so
        (ConfigSource.STORE, True, VersionStatus.DRAFT, False),
        (ConfigSource.STORE, False, VersionStatus.DRAFT, False),
    ],
)
def test_promotes_at_start(
    mode: ConfigSource, created: bool, status: VersionStatus, promotes: bool
) -> None:
    assert promotes_at_start(mode, created, version(status)) is promotes
