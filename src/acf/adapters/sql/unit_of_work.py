"""Unit of work: a unit's ops applied in order inside one transaction of the database."""

from collections.abc import Sequence
from typing import Any

# Importing the port modules registers their executors.
from acf.adapters.sql import (  # noqa: F401
    blocks,
    customer_rates,
    events,
    handoffs,
    lease,
    ledger,
    messages,
    outbox,
    request_log,
    session_modes,
    sessions,
    step_memo,
    timers,
    turns,
)
from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import append_events, written_events
from acf.adapters.sql.registry import EXECUTORS, Executor
from acf.domain.events import FabricEvent
from acf.domain.ids import TenantId
from acf.ports.event_store import AppendEvent
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

        def run(conn: SqlConnection) -> tuple[list[object], list[FabricEvent]]:
            with written_events() as written:
                return steps_run(conn), written

        def steps_run(conn: SqlConnection) -> list[object]:
            results: list[object] = []
            i = 0
            while i < len(steps):
                # Consecutive events go in one statement (their order is kept).
                j = i
                while j < len(steps) and isinstance(steps[j][1], AppendEvent):
                    j += 1
                if j - i > 1:
                    events = [op for _, op in steps[i:j] if isinstance(op, AppendEvent)]
                    results += append_events(conn, tenant, events)
                    i = j
                    continue
                executor, op = steps[i]
                results.append(executor(conn, tenant, op))
                i += 1
            return results

        results, written = await self._db.write(tenant, run)
        return CommitResults(ops, results, written)
