"""Agent sessions (both dialects): one row per conversation and agent session, replaced
whole by ``SaveAgentSession``.

The unique partial index ``ux_agent_sessions_open`` keeps at most one open (ACTIVE or
AWAITING_USER) row per conversation. A save that would make a second one violates it and
raises ``AgentSessionConflict``: on PostgreSQL a concurrent unit saving another open row
for the same conversation waits for the first to end, then fails the same way, so of two
racing units exactly one commits.
"""

from collections.abc import Sequence
from typing import Any

from acf.adapters.sql.database import INTEGRITY_ERRORS, Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.adapters.sql.schema import OPEN_AGENT_SESSION
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.ports.agent_sessions import AgentSessionConflict, SaveAgentSession

_COLUMNS = (
    "tenant, row_id, session_id, agent, profile, agent_session_id, status, pending_ask_id, "
    "pending_question, pending_options, asked_at_ms, execution_key, execution_input, "
    "execution_open, last_error, created_at_ms, last_interaction_at_ms"
)
# Every column but the key takes the saved row's value.
_REPLACE = ", ".join(
    f"{name} = excluded.{name}" for name in _COLUMNS.split(", ") if name not in {"tenant", "row_id"}
)
# Most recently used first; ties by creation, then by id (any stable order).
_LATEST = "last_interaction_at_ms DESC, created_at_ms DESC, row_id DESC"


def _row(row: tuple[Any, ...]) -> AgentSessionRow:
    return AgentSessionRow(
        tenant=row[0],
        row_id=row[1],
        session_id=row[2],
        agent=row[3],
        profile=row[4],
        agent_session_id=row[5],
        status=AgentSessionStatus(row[6]),
        pending_ask_id=row[7],
        pending_question=row[8],
        pending_options=tuple(str(option) for option in loads(row[9])),
        asked_at_ms=row[10],
        execution_key=row[11],
        execution_input=row[12],
        execution_open=bool(row[13]),
        last_error=row[14],
        created_at_ms=row[15],
        last_interaction_at_ms=row[16],
    )


@executes(SaveAgentSession)
def _save(conn: SqlConnection, tenant: str, op: SaveAgentSession) -> None:
    r = op.row
    require_tenant(tenant, r.tenant)
    try:
        conn.execute(
            f"INSERT INTO agent_sessions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            f"ON CONFLICT (tenant, row_id) DO UPDATE SET {_REPLACE}",
            (
                tenant,
                r.row_id,
                r.session_id,
                r.agent,
                r.profile,
                r.agent_session_id,
                r.status.value,
                r.pending_ask_id,
                r.pending_question,
                dumps(list(r.pending_options)),
                r.asked_at_ms,
                r.execution_key,
                r.execution_input,
                r.execution_open,
                r.last_error,
                r.created_at_ms,
                r.last_interaction_at_ms,
            ),
        )
    except INTEGRITY_ERRORS:
        # The unit fails as a whole (the transaction, or the job's savepoint, rolls back).
        raise AgentSessionConflict(
            f"session {r.session_id} already has an open agent session"
        ) from None


class SqlAgentSessions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _rows(
        self, tenant: TenantId, clauses: str, args: tuple[Any, ...]
    ) -> list[AgentSessionRow]:
        """The tenant's rows; ``clauses`` follow ``WHERE tenant = ? AND``, ``args`` the
        tenant."""
        statement = f"SELECT {_COLUMNS} FROM agent_sessions WHERE tenant = ? AND {clauses}"
        return await self._db.read(
            tenant, lambda conn: [_row(r) for r in conn.execute(statement, (tenant, *args))]
        )

    async def _first(
        self, tenant: TenantId, clauses: str, args: tuple[Any, ...]
    ) -> AgentSessionRow | None:
        rows = await self._rows(tenant, f"{clauses} LIMIT 1", args)
        return rows[0] if rows else None

    async def open_for(self, tenant: TenantId, session_id: SessionId) -> AgentSessionRow | None:
        return await self._first(tenant, f"session_id = ? AND {OPEN_AGENT_SESSION}", (session_id,))

    async def latest_for(
        self, tenant: TenantId, session_id: SessionId, agent: AgentId
    ) -> AgentSessionRow | None:
        return await self._first(
            tenant, f"session_id = ? AND agent = ? ORDER BY {_LATEST}", (session_id, agent)
        )

    async def list_for(self, tenant: TenantId, session_id: SessionId) -> Sequence[AgentSessionRow]:
        return await self._rows(
            tenant, "session_id = ? ORDER BY created_at_ms, row_id", (session_id,)
        )

    async def by_agent_session(
        self, tenant: TenantId, agent_session_id: str
    ) -> AgentSessionRow | None:
        # A service could name one id in two conversations' rows: the latest used wins.
        return await self._first(
            tenant, f"agent_session_id = ? ORDER BY {_LATEST}", (agent_session_id,)
        )
