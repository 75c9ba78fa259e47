"""SqliteStore: the embedded backend's ports over one SqliteDatabase."""

import asyncio
from pathlib import Path

from acf.adapters.sql import migrate
from acf.adapters.sqlite.database import Durability, SqliteDatabase
from acf.adapters.sqlite.events import SqliteEventStore
from acf.adapters.sqlite.lease import SqliteSessionLease
from acf.adapters.sqlite.ledger import SqliteLedger
from acf.adapters.sqlite.messages import SqliteMessageLog
from acf.adapters.sqlite.outbox import SqliteOutbox
from acf.adapters.sqlite.recovery import SqliteRecoveryScanner
from acf.adapters.sqlite.request_log import SqliteRequestLog
from acf.adapters.sqlite.sessions import SqliteSessionStore
from acf.adapters.sqlite.step_memo import SqliteStepMemo
from acf.adapters.sqlite.timers import SqliteTimers
from acf.adapters.sqlite.turns import SqliteTurnStore
from acf.adapters.sqlite.unit_of_work import SqliteUnitOfWork
from acf.ports.clock import Clock
from acf.ports.unit_of_work import UnitOfWork

DATABASE_FILE = "acf.db"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class SqliteStore:
    def __init__(self, db: SqliteDatabase, clock: Clock) -> None:
        self.db = db
        self.messages = SqliteMessageLog(db)
        self.sessions = SqliteSessionStore(db)
        self.turns = SqliteTurnStore(db)
        self.events = SqliteEventStore(db)
        self.outbox = SqliteOutbox(db)
        self.memo = SqliteStepMemo(db)
        self.lease = SqliteSessionLease(db, clock)
        self.ledger = SqliteLedger(db)
        self.timers = SqliteTimers(db)
        self.uow: UnitOfWork = SqliteUnitOfWork(db)
        self.recovery = SqliteRecoveryScanner(db)
        self.requests = SqliteRequestLog(db)

    async def ping(self) -> None:
        await self.db.read(lambda conn: conn.execute("SELECT 1").fetchone())

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
