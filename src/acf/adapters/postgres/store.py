"""PgStore: the distributed backend's ports over one PostgreSQL database."""

import asyncio

from sqlalchemy.engine import make_url

from acf.adapters.postgres.database import PgDatabase
from acf.adapters.sql import migrate
from acf.adapters.sql.api_keys import SqlApiKeys
from acf.adapters.sql.config_versions import SqlConfigVersions
from acf.adapters.sql.database import SCANNER
from acf.adapters.sql.ports import SqlPorts
from acf.ports.clock import Clock


def libpq_url(url: str) -> str:
    """A ``postgresql://`` URL for psycopg from any SQLAlchemy-style PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def alembic_url(url: str) -> str:
    """The same database as a SQLAlchemy URL with the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string()}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


class PgStore(SqlPorts):
    def __init__(self, db: PgDatabase, clock: Clock) -> None:
        super().__init__(db, clock)
        self.db = db
        self.config_versions = SqlConfigVersions(db)
        self.api_keys = SqlApiKeys(db)

    async def ping(self) -> None:
        await self.db.read(SCANNER, lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self.db.close()


async def open_pg_store(
    url: str,
    clock: Clock,
    *,
    pool_size: int = 10,
    migrate_to_head: bool = False,
    caller_clock: bool = False,
    name: str = "acf",
) -> PgStore:
    """Connect to the database at ``url`` (``postgresql://…``).

    The schema must be at the head revision (``acf db upgrade``), else ``RuntimeError``;
    ``migrate_to_head`` upgrades it first (tests, single-node setups).
    """
    target = alembic_url(url)
    if migrate_to_head:
        await asyncio.to_thread(migrate.upgrade, target)
    else:
        current = await asyncio.to_thread(migrate.current_revision, target)
        if current != migrate.head_revision():
            raise RuntimeError(
                f"database is at revision {current}, not {migrate.head_revision()}: "
                "run `acf db upgrade`"
            )
    db = PgDatabase(
        libpq_url(url),
        min_size=min(2, pool_size),
        max_size=pool_size,
        caller_clock=caller_clock,
        name=name,
    )
    await db.open()
    return PgStore(db, clock)
