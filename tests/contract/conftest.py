"""The contract suites run against every backend: each test once per adapter.

``--backend NAME`` restricts them to one; ``@pytest.mark.backends("postgresql")`` runs a
test of one backend's own feature only there (never as a skip elsewhere). PostgreSQL runs
on the machine's server in one migrated database per test session, emptied before each
test; its store follows the tests' virtual clock (``caller_clock``), as the SQLite store
does.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate, schema
from acf.adapters.sqlite import open_sqlite_store
from acf.ports.store import Store
from acf.testing import VirtualClock
from tests.integration.services import require_postgres, temporary_database

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        names = BACKENDS if chosen == "all" else (chosen,)
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:  # a test of one backend's own feature (row-level security)
            names = tuple(n for n in names if n in only.args)
        metafunc.parametrize("backend", names)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield url


def empty_all_tables(url: str) -> None:
    tables = ", ".join(t.name for t in schema.metadata.sorted_tables)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables}")


@pytest.fixture
async def store(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[Store]:
    opened: Store
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        empty_all_tables(url)
        opened = await open_pg_store(url, clock, pool_size=4, caller_clock=True)
    else:
        opened = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield opened
    finally:
        await opened.close()
