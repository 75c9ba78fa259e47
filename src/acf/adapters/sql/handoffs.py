"""Handoffs and operators' notes (both dialects): the reads. The writes are in
``handoff_ops`` (imported here, so that importing this module registers their executors)."""

from typing import Any

from acf.adapters.sql import handoff_ops  # noqa: F401  (registers the executors)
from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.handoff_rows import (
    HANDOFF_COLUMNS,
    NOTE_COLUMNS,
    handoff_of,
    note_of,
    open_handoff,
)
from acf.domain.channels import Channel
from acf.domain.ids import SessionId, TenantId
from acf.domain.modes import SessionMode
from acf.ports.handoffs import Handoff, InboxEntry, InboxState, Note

PREVIEW_CHARS = 200

_H_COLUMNS = ", ".join(f"h.{c.strip()}" for c in HANDOFF_COLUMNS.split(","))
# Waiting since the handoff opened, or since an operator last answered.
_WAITING_SINCE = (
    "CASE WHEN h.last_operator_reply_at_ms IS NOT NULL "
    "AND h.last_operator_reply_at_ms > h.opened_at_ms "
    "THEN h.last_operator_reply_at_ms ELSE h.opened_at_ms END"
)
_INBOX = (
    f"SELECT {_H_COLUMNS}, s.agent, s.customer, s.channel, s.mode, s.last_seq, "
    f"s.consumed_seq, {_WAITING_SINCE}, "
    "(SELECT COALESCE(m.text, m.button_title, m.button_id) FROM messages m "
    "WHERE m.tenant = s.tenant AND m.session_id = s.session_id AND m.seq = s.last_seq) "
    "FROM handoffs h JOIN sessions s ON s.tenant = h.tenant AND s.session_id = h.session_id "
    "WHERE h.tenant = ? "
)
_LIVE = "h.claimed_by IS NOT NULL AND h.claim_expires_at_ms > acf_now(?)"
_STATES: dict[InboxState, tuple[str, str, bool]] = {
    # state: (condition, order, whether the condition takes the time)
    InboxState.WAITING: (
        f"AND h.resolved_at_ms IS NULL AND NOT ({_LIVE})",
        f"{_WAITING_SINCE}, h.handoff_id",
        True,
    ),
    InboxState.CLAIMED: (
        f"AND h.resolved_at_ms IS NULL AND {_LIVE}",
        f"{_WAITING_SINCE}, h.handoff_id",
        True,
    ),
    InboxState.OPEN: ("AND h.resolved_at_ms IS NULL", f"{_WAITING_SINCE}, h.handoff_id", False),
    InboxState.RESOLVED: (
        "AND h.resolved_at_ms IS NOT NULL",
        "h.resolved_at_ms DESC, h.handoff_id",
        False,
    ),
}
_WIDTH = len(HANDOFF_COLUMNS.split(","))
_WAITING = (
    "FROM handoffs h JOIN sessions s ON s.tenant = h.tenant AND s.session_id = h.session_id "
    f"WHERE h.tenant = ? AND h.resolved_at_ms IS NULL AND s.mode = 'human' AND NOT ({_LIVE}) "
)
# Each action's due time, NULL when it is done or left out (its delay 0).
_SLA_DUE = f"CASE WHEN h.sla_breached_at_ms IS NULL AND ? > 0 THEN {_WAITING_SINCE} + ? END"
_STILL_DUE = (
    "CASE WHEN h.still_waiting_at_ms IS NULL AND h.last_operator_reply_at_ms IS NULL "
    "AND ? > 0 THEN h.opened_at_ms + ? END"
)
_DUE = (
    f"SELECT {_H_COLUMNS} FROM (SELECT h.handoff_id, {_SLA_DUE} AS sla_due, "
    f"{_STILL_DUE} AS still_due {_WAITING}) d "
    "JOIN handoffs h ON h.tenant = ? AND h.handoff_id = d.handoff_id "
    "WHERE d.sla_due <= ? OR d.still_due <= ? "
    "ORDER BY CASE WHEN d.still_due IS NULL OR d.sla_due <= d.still_due THEN d.sla_due "
    "ELSE d.still_due END, h.handoff_id LIMIT ?"
)


def _entry(row: tuple[Any, ...]) -> InboxEntry:
    rest = row[_WIDTH:]
    preview = rest[7]
    return InboxEntry(
        handoff=handoff_of(row[:_WIDTH]),
        agent=rest[0],
        customer=rest[1],
        channel=Channel(rest[2]),
        mode=SessionMode(rest[3]),
        last_seq=rest[4],
        consumed_seq=rest[5],
        waiting_since_ms=rest[6],
        preview=None if preview is None else str(preview)[:PREVIEW_CHARS],
    )


class SqlHandoffs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def current(self, tenant: TenantId, session_id: SessionId) -> Handoff | None:
        return await self._db.read(tenant, lambda conn: open_handoff(conn, tenant, session_id))

    async def get(self, tenant: TenantId, handoff_id: str) -> Handoff | None:
        def run(conn: SqlConnection) -> Handoff | None:
            row = conn.execute(
                f"SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = ? AND handoff_id = ?",
                (tenant, handoff_id),
            ).fetchone()
            return None if row is None else handoff_of(row)

        return await self._db.read(tenant, run)

    async def inbox(
        self, tenant: TenantId, state: InboxState, now_ms: int, limit: int = 100
    ) -> list[InboxEntry]:
        condition, order, timed = _STATES[state]
        statement = f"{_INBOX}{condition} ORDER BY {order} LIMIT ?"
        args: tuple[Any, ...] = (tenant, now_ms, limit) if timed else (tenant, limit)
        return await self._db.read(
            tenant, lambda conn: [_entry(r) for r in conn.execute(statement, args)]
        )

    async def due(
        self,
        tenant: TenantId,
        now_ms: int,
        sla_ms: int,
        still_waiting_after_ms: int,
        limit: int = 100,
    ) -> list[Handoff]:
        sla, still = max(sla_ms, 0), max(still_waiting_after_ms, 0)
        args = (sla, sla, still, still, tenant, now_ms, tenant, now_ms, now_ms, limit)
        return await self._db.read(
            tenant, lambda conn: [handoff_of(r) for r in conn.execute(_DUE, args)]
        )

    async def waiting_count(self, tenant: TenantId, now_ms: int) -> int:
        def run(conn: SqlConnection) -> int:
            row = conn.execute(f"SELECT COUNT(*) {_WAITING}", (tenant, now_ms)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._db.read(tenant, run)

    async def history(self, tenant: TenantId, session_id: SessionId) -> list[Handoff]:
        def run(conn: SqlConnection) -> list[Handoff]:
            return [
                handoff_of(r)
                for r in conn.execute(
                    f"SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = ? "
                    "AND session_id = ? ORDER BY opened_at_ms, handoff_id",
                    (tenant, session_id),
                )
            ]

        return await self._db.read(tenant, run)

    async def notes(self, tenant: TenantId, session_id: SessionId) -> list[Note]:
        def run(conn: SqlConnection) -> list[Note]:
            return [
                note_of(r)
                for r in conn.execute(
                    f"SELECT {NOTE_COLUMNS} FROM operator_notes WHERE tenant = ? "
                    "AND session_id = ? ORDER BY created_at_ms, note_id",
                    (tenant, session_id),
                )
            ]

        return await self._db.read(tenant, run)
