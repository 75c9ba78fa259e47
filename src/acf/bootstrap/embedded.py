"""The embedded backend: one SQLite file in a data directory, in-process wake-ups.

``open_embedded_backend`` is its part of ``acf serve``; ``open_embedded`` wires it for tools
and tests (store, wake-ups and ingress, no runtime)."""

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.directory import StaticDirectory
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.adapters.sqlite.database import Durability
from acf.adapters.sqlite.store import DATABASE_FILE, SqliteStore, open_sqlite_store
from acf.bootstrap.backend import Backend
from acf.ports.clock import Clock
from acf.service.ingress import Ingress


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILE


async def open_embedded_backend(data_dir: Path, clock: Clock, durability: Durability) -> Backend:
    """Open the database in ``data_dir`` (created on first run)."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    store = await open_sqlite_store(database_path(data_dir), clock, durability)
    keys = SqliteApiKeys(database_path(data_dir))
    return Backend(store, InProcessWakeUps(), keys)


@dataclass(slots=True)
class Embedded:
    """The embedded backend, wired: store, wake-ups and ingress over one SQLite file."""

    store: SqliteStore
    wakeups: InProcessWakeUps
    ingress: Ingress
    clock: Clock

    async def close(self) -> None:
        await self.store.close()


async def open_embedded(
    data_dir: Path,
    agents_by_tenant: Mapping[str, Iterable[str]],
    clock: Clock | None = None,
    durability: Durability = Durability.FULL,
) -> Embedded:
    clock = clock or SystemClock()
    store = await open_sqlite_store(database_path(data_dir), clock, durability)
    wakeups = InProcessWakeUps()
    ingress = Ingress(StaticDirectory(agents_by_tenant), store.uow, wakeups, clock)
    return Embedded(store, wakeups, ingress, clock)
