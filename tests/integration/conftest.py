"""Fixtures shared by the integration tests."""

from collections.abc import AsyncIterator, Iterator

import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import PgStore
from acf.adapters.sql import migrate
from tests.chaos.fakes import FakeProvider
from tests.integration.services import require_postgres, temporary_database


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A temporary PostgreSQL database migrated to head, for the module's tests."""
    require_postgres()
    with temporary_database() as made:
        migrate.upgrade(made)
        yield made


@pytest.fixture
def database() -> Iterator[str]:
    """A temporary PostgreSQL database migrated to head, for one test."""
    require_postgres()
    with temporary_database() as made:
        migrate.upgrade(made)
        yield made


@pytest.fixture
async def store(database: str) -> AsyncIterator[PgStore]:
    """The test's own view of ``database`` (on the system clock, as the processes run)."""
    opened = await open_pg_store(database, SystemClock(), pool_size=2)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """A web channel's delivery URL on loopback, recording what it receives."""
    fake = FakeProvider()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
