"""Shared fixtures. ``--backend`` chooses the adapters the contract suites run against."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.adapters.sqlite import open_sqlite_store
from acf.ports.store import Store
from acf.testing import VirtualClock

BACKENDS = ("all", "sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="store",
        default="all",
        choices=BACKENDS,
        help="storage backend(s) the contract suites run against (default: all)",
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Store]:
    """The embedded store (the contract suites override this with every backend)."""
    opened = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield opened
    finally:
        await opened.close()
