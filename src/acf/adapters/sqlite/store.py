"""SqliteStore: the embedded backend's ports over one SqliteDatabase."""

import asyncio
from pathlib import Path

from acf.adapters.sql import migrate
from acf.adapters.sql.config_versions import SqlConfigVersions
from acf.adapters.sql.database import SCANNER
from acf.adapters.sql.ports import SqlPorts
from acf.adapters.sqlite.database import Durability, SqliteDatabase
from acf.ports.clock import Clock

DATABASE_FILE = "acf.db"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class SqliteStore(SqlPorts):
    def __init__(self, db: SqliteDatabase, clock: Clock) -> None:
        super().__init__(db, clock)
        self.db = db
        self.config_versions = SqlConfigVersions(db)

    async def ping(self) -> None:
        await self.db.read(SCANNER, lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self.db.close()


async def open_sqlite_store(
    path: Path,
    clock: Clock,
    durability: Durability = Durability.FULL,
    migrate_to_head: bool = True,
) -> SqliteStore:
    """Open (and by default migrate) the database file at ``path``.

    Raises ``DatabaseInUse`` when another process holds it, and ``RuntimeError`` when the
    schema is not at the head revision and ``migrate_to_head`` is off.
    """
    db = SqliteDatabase(path, durability)
    # Lock first, so a second process is refused before it touches the schema.
    await asyncio.to_thread(db.open)
    try:
        url = sqlite_url(path)
        if migrate_to_head:
            await asyncio.to_thread(migrate.upgrade, url)
        else:
            current = await asyncio.to_thread(migrate.current_revision, url)
            if current != migrate.head_revision():
                raise RuntimeError(
                    f"database {path} is at revision {current}, not "
                    f"{migrate.head_revision()}: run `acf db upgrade`"
                )
    except BaseException:
        await db.close()
        raise
    return SqliteStore(db, clock)
