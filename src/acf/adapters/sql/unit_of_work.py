"""Unit of work: a unit's ops applied in order inside one transaction of the database."""

from collections.abc import Sequence
from typing import Any

# Importing the port modules registers their executors.
from acf.adapters.sql import (  # noqa: F401
    events,
    lease,
    ledger,
    messages,
    outbox,
    request_log,
    sessions,
    step_memo,
    timers,
    turns,
)
from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import EXECUTORS, Executor
from acf.domain.ids import TenantId
from acf.ports.unit_of_work import CommitResults, WriteOp


class SqlUnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def commit(self, tenant: TenantId, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        steps: list[tuple[Executor, WriteOp[Any]]] = []
        for op in ops:
            executor = EXECUTORS.get(type(op))
            if executor is None:
                raise TypeError(f"the SQL adapter has no executor for {type(op).__name__}")
            steps.append((executor, op))

        def run(conn: SqlConnection) -> list[object]:
            return [executor(conn, tenant, op) for executor, op in steps]

        return CommitResults(ops, await self._db.write(tenant, run))
