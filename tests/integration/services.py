"""Access to the external services the integration tests need (PostgreSQL).

A test that needs PostgreSQL calls ``require_postgres()`` first: it skips when the server
is unreachable, unless ``ACF_REQUIRE_SERVICES=1`` (CI), where an absent server is a failure.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 3


def postgres_admin_dsn() -> str:
    """The libpq DSN of a database on the test server we may connect to (never modified)."""
    return os.environ.get("ACF_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)


def services_required() -> bool:
    return os.environ.get("ACF_REQUIRE_SERVICES") == "1"


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable (fail under ACF_REQUIRE_SERVICES=1)."""
    dsn = postgres_admin_dsn()
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {dsn}: {exc}"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a fresh ``acf_test_<hex>`` database, yield its SQLAlchemy URL, then drop it."""
    dsn = postgres_admin_dsn()
    name = f"acf_test_{uuid.uuid4().hex}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(dsn).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
