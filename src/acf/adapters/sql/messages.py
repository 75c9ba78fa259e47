"""Message log (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.identities import routed_session_id
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.adapters.sql.sessions import open_session_id
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import MessageId, SessionId, TenantId, new_id
from acf.domain.messages import AppendResult, ButtonReply, InboundMessage, MediaRef
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.message_log import AppendMessage

_COLUMNS = (
    "m.tenant, m.message_id, m.session_id, m.seq, m.channel, m.provider_message_id, m.text, "
    "m.button_id, m.button_title, m.media, m.provider_timestamp_ms, m.sender_name, "
    "m.received_at_ms, s.agent, COALESCE(m.address, s.customer)"
)
_FROM = "FROM messages m JOIN sessions s ON s.tenant = m.tenant AND s.session_id = m.session_id"


def _message(row: tuple[Any, ...]) -> InboundMessage:
    return InboundMessage(
        message_id=row[1],
        session_id=row[2],
        key=SessionKey(row[0], row[13], row[14], Channel(row[4])),
        seq=row[3],
        provider_message_id=row[5],
        text=row[6],
        button=None if row[7] is None else ButtonReply(row[7], row[8]),
        media=tuple(MediaRef(**m) for m in loads(row[9])),
        provider_timestamp_ms=row[10],
        sender_name=row[11],
        received_at_ms=row[12],
    )


def _media(refs: tuple[MediaRef, ...]) -> str:
    return dumps([{"ref": m.ref, "mime_type": m.mime_type, "caption": m.caption} for m in refs])


def _bump(
    conn: SqlConnection, tenant: str, session_id: str, op: AppendMessage
) -> tuple[int, str] | None:
    """The session's next sequence number and its mode, or ``None`` when it is no longer
    open."""
    row = conn.execute(
        "UPDATE sessions SET last_seq = last_seq + 1, updated_at_ms = ?, "
        "pending_trace_id = CASE WHEN last_seq = consumed_seq THEN ? ELSE pending_trace_id END "
        "WHERE tenant = ? AND session_id = ? AND status = 'open' RETURNING last_seq, mode",
        (op.received_at_ms, op.trace_id, tenant, session_id),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _held(mode: str | None) -> str | None:
    """What ``AppendResult.held`` says for a session in ``mode``: its mode unless agent."""
    return None if mode is None or mode == SessionMode.AGENT.value else mode


@executes(AppendMessage)
def _append(conn: SqlConnection, tenant: str, op: AppendMessage) -> AppendResult:
    msg = op.message
    key = msg.key
    require_tenant(tenant, key.tenant)
    conn.execute("SAVEPOINT append_message")
    # An address a reply fell back to (or an operator continued on) answers into the
    # session that wrote there; any other goes to its own key's session.
    session_id = routed_session_id(
        conn, tenant, key.channel, key.customer, op.received_at_ms
    ) or open_session_id(conn, key, op.received_at_ms)
    bumped = _bump(conn, tenant, session_id, op)
    if bumped is None:
        # The session closed between the read and this write (PostgreSQL, an idle close
        # committing meanwhile): the message opens the key's next session instead.
        session_id = open_session_id(conn, key, op.received_at_ms)
        bumped = _bump(conn, tenant, session_id, op)
    if bumped is None:
        raise Conflict(f"session {session_id} closed while a message was appended")
    seq, mode = bumped
    message_id = new_id()
    inserted = conn.execute(
        "INSERT INTO messages (tenant, message_id, session_id, seq, channel, "
        "provider_message_id, text, button_id, button_title, media, provider_timestamp_ms, "
        "sender_name, received_at_ms, trace_id, address) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (tenant, channel, provider_message_id) DO NOTHING",
        (
            tenant,
            message_id,
            session_id,
            seq,
            key.channel.value,
            msg.provider_message_id,
            msg.text,
            None if msg.button is None else msg.button.button_id,
            None if msg.button is None else msg.button.title,
            _media(msg.media),
            msg.provider_timestamp_ms,
            msg.sender_name,
            op.received_at_ms,
            op.trace_id,
            key.customer,
        ),
    ).rowcount
    if inserted:
        conn.execute("RELEASE append_message")
        result = AppendResult(message_id, session_id, seq, duplicate=False, held=_held(mode))
        kind = EventKind.MESSAGE_RECEIVED
    else:
        # The unique constraint said "seen before": undo the sequence bump (and the session
        # it may have opened) and answer with the original's identity.
        conn.execute("ROLLBACK TO append_message")
        conn.execute("RELEASE append_message")
        original = conn.execute(
            "SELECT m.message_id, m.session_id, m.seq, s.mode FROM messages m "
            "JOIN sessions s ON s.tenant = m.tenant AND s.session_id = m.session_id "
            "WHERE m.tenant = ? AND m.channel = ? AND m.provider_message_id = ?",
            (tenant, key.channel.value, msg.provider_message_id),
        ).fetchone()
        result = AppendResult(
            original[0], original[1], original[2], duplicate=True, held=_held(original[3])
        )
        kind = EventKind.MESSAGE_DUPLICATE
    insert_event(
        conn,
        FabricEvent(
            kind=kind,
            at_ms=op.received_at_ms,
            correlation=Correlation(
                tenant=tenant, trace_id=op.trace_id, session_id=result.session_id
            ),
            data={
                "message_id": result.message_id,
                "seq": result.seq,
                "provider_message_id": msg.provider_message_id,
                "channel": key.channel.value,
                # A message a session in cool-down, human or blocked mode keeps.
                **({} if result.held is None else {"held": result.held}),
            },
        ),
    )
    return result


def newest_of(conn: SqlConnection, tenant: str, session_id: str) -> InboundMessage | None:
    """The customer's newest message in the session: where and when they last wrote."""
    row = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE m.tenant = ? AND m.session_id = ? "
        "ORDER BY m.seq DESC LIMIT 1",
        (tenant, session_id),
    ).fetchone()
    return None if row is None else _message(row)


class SqlMessageLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _select(self, where: str, args: tuple[Any, ...]) -> list[InboundMessage]:
        tenant = str(args[0])  # every query here names the tenant first
        statement = f"SELECT {_COLUMNS} {_FROM} WHERE {where}"
        return await self._db.read(
            tenant, lambda conn: [_message(r) for r in conn.execute(statement, args)]
        )

    async def get(self, tenant: TenantId, message_id: MessageId) -> InboundMessage | None:
        rows = await self._select("m.tenant = ? AND m.message_id = ?", (tenant, message_id))
        return rows[0] if rows else None

    async def find_by_provider_id(
        self, tenant: TenantId, channel: Channel, provider_message_id: str
    ) -> InboundMessage | None:
        rows = await self._select(
            "m.tenant = ? AND m.channel = ? AND m.provider_message_id = ?",
            (tenant, channel.value, provider_message_id),
        )
        return rows[0] if rows else None

    async def read_range(
        self, tenant: TenantId, session_id: SessionId, after_seq: int, upto_seq: int
    ) -> list[InboundMessage]:
        return await self._select(
            "m.tenant = ? AND m.session_id = ? AND m.seq > ? AND m.seq <= ? ORDER BY m.seq",
            (tenant, session_id, after_seq, upto_seq),
        )

    async def recent(
        self, tenant: TenantId, session_id: SessionId, upto_seq: int, limit: int
    ) -> list[InboundMessage]:
        rows = await self._select(
            "m.tenant = ? AND m.session_id = ? AND m.seq <= ? ORDER BY m.seq DESC LIMIT ?",
            (tenant, session_id, upto_seq, limit),
        )
        return rows[::-1]
