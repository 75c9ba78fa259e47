"""Session rows (both dialects): reading one, and opening the key's session.

A new session is pinned to a configuration version in the transaction that opens it: the
tenant's ``config_pointers`` row is read there (``FOR SHARE`` on PostgreSQL, so a promote,
which takes the row ``FOR UPDATE``, and the open are ordered: a session whose open commits
after a promote has the new version, one that read the old pointer commits before the
promote can). On SQLite every write transaction is serial, which gives the same order.

A new session of a customer on the tenant's block list opens ``blocked`` (mode reason
``block:<block_id>``). The open and a ``BlockCustomer`` of the same customer are ordered
on PostgreSQL by ``lock_customer`` (the open takes it shared, the block exclusively), so
a session opening while its customer is being blocked is either seen by the block's
update or sees the block.
"""

from typing import Any

from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.registry import dumps, loads
from acf.domain import state as state_contract
from acf.domain.config_versions import canary_arm
from acf.domain.errors import Conflict
from acf.domain.ids import SessionId, new_id
from acf.domain.modes import SessionMode, block_reason
from acf.domain.session_key import SessionKey
from acf.ports.session_store import SessionRecord, SessionStatus

SESSION_COLUMNS = (
    "tenant, session_id, agent, customer, channel, status, last_seq, consumed_seq, state, "
    "state_version, flagged, flag_reason, created_at_ms, updated_at_ms, pending_trace_id, "
    "config_version, canary, closed_at_ms, mode, mode_reason, mode_since_ms, mode_until_ms, "
    "fallbacks"
)


def session_record(row: tuple[Any, ...]) -> SessionRecord:
    """The record of a row selected with ``SESSION_COLUMNS``."""
    return SessionRecord(
        session_id=row[1],
        key=SessionKey(row[0], row[2], row[3], row[4]),
        status=SessionStatus(row[5]),
        last_seq=row[6],
        consumed_seq=row[7],
        state=state_contract.upcast(loads(row[8])),
        state_version=row[9],
        flagged=bool(row[10]),
        flag_reason=row[11],
        created_at_ms=row[12],
        updated_at_ms=row[13],
        pending_trace_id=row[14],
        config_version=row[15],
        canary=bool(row[16]),
        closed_at_ms=row[17],
        mode=SessionMode(row[18]),
        mode_reason=row[19],
        mode_since_ms=row[20],
        mode_until_ms=row[21],
        fallbacks=row[22],
    )


def fetch_session(conn: SqlConnection, tenant: str, session_id: str) -> SessionRecord | None:
    row = conn.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, session_id),
    ).fetchone()
    return None if row is None else session_record(row)


def require_session(conn: SqlConnection, tenant: str, session_id: str) -> SessionRecord:
    """The session, else ``Conflict("no session …")``."""
    record = fetch_session(conn, tenant, session_id)
    if record is None:
        raise Conflict(f"no session {session_id}")
    return record


def _for_update(conn: SqlConnection) -> str:
    return " FOR UPDATE" if conn.dialect.name == "postgresql" else ""


def assigned_version(conn: SqlConnection, tenant: str, session_id: str) -> tuple[int | None, bool]:
    """The version a session opening now is pinned to, and whether it is the canary's: read
    from the tenant's pointer in this transaction (shared lock on PostgreSQL)."""
    row = conn.execute(
        "SELECT live, canary, canary_share FROM config_pointers WHERE tenant = ?"
        + conn.dialect.lock_shared,
        (tenant,),
    ).fetchone()
    if row is None:
        return None, False
    live, canary, share = row
    if canary is not None and canary_arm(session_id, share):
        return int(canary), True
    return (None if live is None else int(live)), False


def lock_customer(
    conn: SqlConnection, tenant: str, channel: str, customer: str, *, exclusive: bool
) -> None:
    """Order this transaction with the others that open a session of the customer on the
    channel (``exclusive=False``) or change the customer's block (``exclusive=True``):
    a transaction-scoped advisory lock on PostgreSQL; nothing on SQLite, where write
    transactions are serial."""
    if conn.dialect.name != "postgresql":
        return
    kind = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(
        f"SELECT {kind}(hashtextextended(?, 0))",
        (f"customer-block\x1f{tenant}\x1f{channel}\x1f{customer}",),
    )


def active_block_id(
    conn: SqlConnection, tenant: str, channel: str, customer: str, at_ms: int
) -> str | None:
    """The customer's active block on the channel at ``at_ms`` (unlifted, unexpired)."""
    row = conn.execute(
        "SELECT block_id FROM customer_blocks WHERE tenant = ? AND channel = ? "
        "AND customer = ? AND lifted_at_ms IS NULL "
        "AND (expires_at_ms IS NULL OR expires_at_ms > ?)",
        (tenant, channel, customer, at_ms),
    ).fetchone()
    return None if row is None else str(row[0])


def open_session_id(conn: SqlConnection, key: SessionKey, at_ms: int) -> SessionId:
    """The id of the key's open session, creating the session if there is none (pinned to
    the version ``assigned_version`` reads; ``blocked`` when the customer has an active
    block on the channel).

    The open session is locked (PostgreSQL) until the transaction ends, so a concurrent
    ``CloseSession`` either commits first (then this finds no open session and opens a new
    one) or waits for this transaction (then it sees the message this one appends)."""
    row = conn.execute(
        "SELECT session_id FROM sessions WHERE tenant = ? AND agent = ? AND customer = ? "
        "AND channel = ? AND status = 'open'" + _for_update(conn),
        (key.tenant, key.agent, key.customer, key.channel.value),
    ).fetchone()
    if row is not None:
        return str(row[0])
    session_id = new_id()
    version, canary = assigned_version(conn, key.tenant, session_id)
    lock_customer(conn, key.tenant, key.channel.value, key.customer, exclusive=False)
    block_id = active_block_id(conn, key.tenant, key.channel.value, key.customer, at_ms)
    mode, reason, since = SessionMode.AGENT, None, None
    if block_id is not None:
        mode, reason, since = SessionMode.BLOCKED, block_reason(block_id), at_ms
    cur = conn.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) "
        "VALUES (?,?,?,?,?,'open',0,0,?,0,FALSE,NULL,?,?,NULL,?,?,NULL,?,?,?,NULL,0) "
        "ON CONFLICT (tenant, agent, customer, channel) WHERE status = 'open' DO NOTHING",
        (
            key.tenant,
            session_id,
            key.agent,
            key.customer,
            key.channel.value,
            dumps(state_contract.initial_state()),
            at_ms,
            at_ms,
            version,
            canary,
            mode.value,
            reason,
            since,
        ),
    )
    if cur.rowcount == 0:  # another transaction opened it meanwhile (PostgreSQL)
        return open_session_id(conn, key, at_ms)
    return session_id
