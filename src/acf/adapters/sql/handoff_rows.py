"""Rows of ``handoffs`` and ``operator_notes`` (both dialects), and what the handoff's reads
and writes share: the open handoff read (locked on PostgreSQL), the session's mode, an
audit event."""

from collections.abc import Mapping
from typing import Any

from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.events import insert_event
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.handoffs import Handoff, HandoffSource, Note

HANDOFF_COLUMNS = (
    "tenant, handoff_id, session_id, reason, source, opened_by, opened_at_ms, claimed_by, "
    "claimed_by_name, claimed_at_ms, claim_expires_at_ms, last_operator_reply_at_ms, "
    "sla_breached_at_ms, still_waiting_at_ms, resolved_at_ms, resolved_by, resume_note"
)
NOTE_COLUMNS = "note_id, session_id, handoff_id, author_key_id, author_name, text, created_at_ms"


def handoff_of(row: tuple[Any, ...]) -> Handoff:
    return Handoff(
        tenant=row[0],
        handoff_id=row[1],
        session_id=row[2],
        reason=row[3],
        source=HandoffSource(row[4]),
        opened_by=row[5],
        opened_at_ms=row[6],
        claimed_by=row[7],
        claimed_by_name=row[8],
        claimed_at_ms=row[9],
        claim_expires_at_ms=row[10],
        last_operator_reply_at_ms=row[11],
        sla_breached_at_ms=row[12],
        still_waiting_at_ms=row[13],
        resolved_at_ms=row[14],
        resolved_by=row[15],
        resume_note=row[16],
    )


def note_of(row: tuple[Any, ...]) -> Note:
    return Note(
        note_id=row[0],
        session_id=row[1],
        handoff_id=row[2],
        author_key_id=row[3],
        author_name=row[4],
        text=row[5],
        created_at_ms=row[6],
    )


def for_update(conn: SqlConnection) -> str:
    """Appended to a SELECT whose row this transaction changes next (PostgreSQL: a
    concurrent writer waits for this one's end; SQLite's write transactions are serial)."""
    return " FOR UPDATE" if conn.dialect.name == "postgresql" else ""


def open_handoff(
    conn: SqlConnection, tenant: str, session_id: str, lock: bool = False
) -> Handoff | None:
    """The session's unresolved handoff (locked until the transaction ends with ``lock``)."""
    row = conn.execute(
        f"SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = ? AND session_id = ? "
        "AND resolved_at_ms IS NULL" + (for_update(conn) if lock else ""),
        (tenant, session_id),
    ).fetchone()
    return None if row is None else handoff_of(row)


def session_mode(conn: SqlConnection, tenant: str, session_id: str) -> tuple[str, str] | None:
    """The session's (status, mode), or None when there is no such session."""
    row = conn.execute(
        "SELECT status, mode FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, session_id),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def audit(
    conn: SqlConnection,
    kind: EventKind,
    tenant: str,
    session_id: str,
    trace_id: str,
    at_ms: int,
    data: Mapping[str, Any],
) -> None:
    insert_event(conn, FabricEvent(kind, at_ms, Correlation(tenant, trace_id, session_id), data))
