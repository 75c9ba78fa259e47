"""Shared fixtures. ``--backend`` chooses the adapter the contract suites run against."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.adapters.sqlite import open_sqlite_store
from acf.ports.store import Store
from acf.testing import VirtualClock

BACKENDS = ("sqlite",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="store",
        default="sqlite",
        choices=BACKENDS,
        help="storage backend the contract suites run against",
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[Store]:
    backend = request.config.getoption("--backend")
    assert backend == "sqlite"
    opened = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield opened
    finally:
        await opened.close()
