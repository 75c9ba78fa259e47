"""Email threads (both dialects): one row per mail in or out, keyed by tenant, customer,
direction and Message-ID; References stored space-separated (Message-IDs hold no space)."""

from collections.abc import Sequence

from acf.adapters.sql.database import Database, SqlConnection
from acf.domain.ids import TenantId
from acf.ports.email_threads import ReplyContext, reply_references

INBOUND = "in"
OUTBOUND = "out"


def _insert(
    conn: SqlConnection,
    tenant: str,
    direction: str,
    customer: str,
    message_id: str,
    references: Sequence[str],
    subject: str,
    at_ms: int,
) -> None:
    conn.execute(
        "INSERT INTO email_threads (tenant, customer, direction, message_id, subject, refs, "
        "at_ms) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (tenant, customer, direction, message_id, subject, " ".join(references), at_ms),
    )


def _sent_to(conn: SqlConnection, tenant: str, message_id: str) -> str | None:
    row = conn.execute(
        "SELECT customer FROM email_threads WHERE tenant = ? AND message_id = ? "
        "AND direction = ? ORDER BY at_ms DESC, row_id DESC",
        (tenant, message_id, OUTBOUND),
    ).fetchone()
    return None if row is None else str(row[0])


def _find(
    conn: SqlConnection, tenant: str, in_reply_to: str | None, references: Sequence[str]
) -> str | None:
    candidates = [in_reply_to] if in_reply_to else []
    candidates += reversed(references)  # the newest reference is the last one
    for message_id in candidates:
        customer = _sent_to(conn, tenant, message_id)
        if customer is not None:
            return customer
    return None


def _context(conn: SqlConnection, tenant: str, customer: str) -> ReplyContext | None:
    row = conn.execute(
        "SELECT message_id, refs, subject FROM email_threads "
        "WHERE tenant = ? AND customer = ? AND direction = ? "
        "ORDER BY at_ms DESC, row_id DESC",
        (tenant, customer, INBOUND),
    ).fetchone()
    if row is None:
        return None
    message_id, refs, subject = str(row[0]), str(row[1]), str(row[2])
    return ReplyContext(subject, message_id, reply_references(message_id, refs.split()))


class SqlEmailThreads:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_inbound(
        self,
        tenant: TenantId,
        customer: str,
        message_id: str,
        references: Sequence[str],
        subject: str,
        at_ms: int,
    ) -> None:
        await self._record(tenant, INBOUND, customer, message_id, references, subject, at_ms)

    async def record_outbound(
        self,
        tenant: TenantId,
        customer: str,
        message_id: str,
        references: Sequence[str],
        subject: str,
        at_ms: int,
    ) -> None:
        await self._record(tenant, OUTBOUND, customer, message_id, references, subject, at_ms)

    async def _record(
        self,
        tenant: TenantId,
        direction: str,
        customer: str,
        message_id: str,
        references: Sequence[str],
        subject: str,
        at_ms: int,
    ) -> None:
        args = (direction, customer, message_id, tuple(references), subject, at_ms)
        await self._db.write(tenant, lambda conn: _insert(conn, tenant, *args))

    async def find_customer(
        self, tenant: TenantId, in_reply_to: str | None, references: Sequence[str]
    ) -> str | None:
        refs = tuple(references)
        return await self._db.read(tenant, lambda conn: _find(conn, tenant, in_reply_to, refs))

    async def reply_context(self, tenant: TenantId, customer: str) -> ReplyContext | None:
        return await self._db.read(tenant, lambda conn: _context(conn, tenant, customer))
