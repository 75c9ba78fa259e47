"""Fixtures shared by the integration tests."""

from collections.abc import Iterator

import pytest

from acf.adapters.sql import migrate
from tests.integration.services import require_postgres, temporary_database


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A temporary PostgreSQL database migrated to head, for the module's tests."""
    require_postgres()
    with temporary_database() as made:
        migrate.upgrade(made)
        yield made
