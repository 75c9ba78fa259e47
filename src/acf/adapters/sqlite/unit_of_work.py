"""SQLite unit of work: a unit's ops applied in one savepoint of a group-committed batch."""

import sqlite3
from collections.abc import Sequence
from typing import Any

# Importing the port modules registers their executors.
from acf.adapters.sqlite import (  # noqa: F401
    events,
    lease,
    ledger,
    messages,
    outbox,
    sessions,
    step_memo,
    timers,
    turns,
)
from acf.adapters.sqlite.database import SqliteDatabase
from acf.adapters.sqlite.registry import EXECUTORS, Executor
from acf.domain.ids import TenantId
from acf.ports.unit_of_work import CommitResults, WriteOp


class SqliteUnitOfWork:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def commit(self, tenant: TenantId, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        steps: list[tuple[Executor, WriteOp[Any]]] = []
        for op in ops:
            executor = EXECUTORS.get(type(op))
            if executor is None:
                raise TypeError(f"the SQLite adapter has no executor for {type(op).__name__}")
            steps.append((executor, op))

        def run(conn: sqlite3.Connection) -> list[object]:
            return [executor(conn, tenant, op) for executor, op in steps]

        return CommitResults(ops, await self._db.write(run))
