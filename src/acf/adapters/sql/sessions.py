"""Session store (both dialects).

A new session is pinned to a configuration version in the transaction that opens it: the
tenant's ``config_pointers`` row is read there (``FOR SHARE`` on PostgreSQL, so a promote,
which takes the row ``FOR UPDATE``, and the open are ordered: a session whose open commits
after a promote has the new version, one that read the old pointer commits before the
promote can). On SQLite every write transaction is serial, which gives the same order.
"""

from typing import Any, NoReturn

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.adapters.sql.schema import LIVE_PHASES
from acf.domain import state as state_contract
from acf.domain.config_versions import canary_arm, version_label
from acf.domain.errors import Conflict, VersionConflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.session_store import (
    CloseSession,
    ConsumeRange,
    FlagSession,
    PatchState,
    RepinSession,
    SessionFilter,
    SessionRecord,
    SessionStatus,
)

_COLUMNS = (
    "tenant, session_id, agent, customer, channel, status, last_seq, consumed_seq, state, "
    "state_version, flagged, flag_reason, created_at_ms, updated_at_ms, pending_trace_id, "
    "config_version, canary, closed_at_ms, mode, mode_reason, mode_since_ms, mode_until_ms, "
    "fallbacks"
)


def _record(row: tuple[Any, ...]) -> SessionRecord:
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


def open_session_id(conn: SqlConnection, key: SessionKey, at_ms: int) -> SessionId:
    """The id of the key's open session, creating the session if there is none (pinned to
    the version ``assigned_version`` reads).

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
    cur = conn.execute(
        f"INSERT INTO sessions ({_COLUMNS}) "
        "VALUES (?,?,?,?,?,'open',0,0,?,0,FALSE,NULL,?,?,NULL,?,?,NULL,'agent',NULL,NULL,NULL,0) "
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
        ),
    )
    if cur.rowcount == 0:  # another transaction opened it meanwhile (PostgreSQL)
        return open_session_id(conn, key, at_ms)
    return session_id


def fetch_session(conn: SqlConnection, tenant: str, session_id: str) -> SessionRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, session_id),
    ).fetchone()
    return None if row is None else _record(row)


def _require(conn: SqlConnection, tenant: str, session_id: str) -> SessionRecord:
    record = fetch_session(conn, tenant, session_id)
    if record is None:
        raise Conflict(f"no session {session_id}")
    return record


@executes(PatchState)
def _patch(conn: SqlConnection, tenant: str, op: PatchState) -> int:
    current = _require(conn, tenant, op.session_id)
    if current.state_version != op.expected_version:
        raise VersionConflict(
            f"session {op.session_id} state is at version {current.state_version}, "
            f"not {op.expected_version}"
        )
    new_state = state_contract.apply_patch(current.state, op.patch)
    conn.execute(
        "UPDATE sessions SET state = ?, state_version = state_version + 1, updated_at_ms = ? "
        "WHERE tenant = ? AND session_id = ? AND state_version = ?",
        (dumps(new_state), op.at_ms, tenant, op.session_id, op.expected_version),
    )
    return op.expected_version + 1


@executes(ConsumeRange)
def _consume(conn: SqlConnection, tenant: str, op: ConsumeRange) -> None:
    # One statement when the range may be consumed, its checks made on the row it locks.
    # The next turn inherits the trace of the oldest message left unconsumed, if any.
    cur = conn.execute(
        "UPDATE sessions SET consumed_seq = ?, updated_at_ms = ?, pending_trace_id = "
        "(SELECT trace_id FROM messages WHERE tenant = ? AND session_id = ? AND seq = ?) "
        "WHERE tenant = ? AND session_id = ? AND consumed_seq = ? AND ? BETWEEN ? AND last_seq "
        "AND (NOT ? OR last_seq = ?)",
        (
            op.to_seq,
            op.at_ms,
            tenant,
            op.session_id,
            op.to_seq + 1,
            tenant,
            op.session_id,
            op.from_seq,
            op.to_seq,
            op.from_seq,
            op.require_last_seq,
            op.to_seq,
        ),
    )
    if cur.rowcount == 1:
        return
    row = conn.execute(
        "SELECT consumed_seq, last_seq FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, op.session_id),
    ).fetchone()
    if row is None:
        raise Conflict(f"no session {op.session_id}")
    consumed, last = row
    if consumed != op.from_seq:
        raise Conflict("consumed_seq")
    if op.to_seq > last or op.to_seq < op.from_seq:
        raise Conflict("range")
    raise Conflict("new_messages")


@executes(FlagSession)
def _flag(conn: SqlConnection, tenant: str, op: FlagSession) -> None:
    cur = conn.execute(
        "UPDATE sessions SET flagged = ?, flag_reason = ?, updated_at_ms = ? "
        "WHERE tenant = ? AND session_id = ?",
        (op.flagged, op.reason if op.flagged else None, op.at_ms, tenant, op.session_id),
    )
    if cur.rowcount == 0:
        raise Conflict(f"no session {op.session_id}")


@executes(RepinSession)
def _repin(conn: SqlConnection, tenant: str, op: RepinSession) -> None:
    """Guards, in this order: the session exists and is pinned to ``from_number``
    (``Conflict``), its state is at ``expected_state_version`` when given
    (``VersionConflict``), and ``to_number`` is the tenant's live version now — the pointer
    read in this transaction (shared lock on PostgreSQL, so a promote in progress is waited
    for), never a process's cached view (``Conflict``)."""
    require_tenant(tenant, op.tenant)
    pointer = conn.execute(
        "SELECT live FROM config_pointers WHERE tenant = ?" + conn.dialect.lock_shared,
        (tenant,),
    ).fetchone()
    live = None if pointer is None or pointer[0] is None else int(pointer[0])
    pinned = "config_version IS NULL" if op.from_number is None else "config_version = ?"
    guard: tuple[Any, ...] = (tenant, op.session_id)
    if op.from_number is not None:
        guard += (op.from_number,)
    migrated = op.state_patch is not None
    if op.state_patch is None:
        cur = conn.execute(
            "UPDATE sessions SET config_version = ?, canary = FALSE, updated_at_ms = ? "
            f"WHERE tenant = ? AND session_id = ? AND {pinned}",
            (op.to_number, op.at_ms, *guard),
        )
    else:
        state = state_contract.upcast(op.state_patch)
        expected = ""
        if op.expected_state_version is not None:
            expected = " AND state_version = ?"
            guard += (op.expected_state_version,)
        cur = conn.execute(
            "UPDATE sessions SET config_version = ?, canary = FALSE, updated_at_ms = ?, "
            "state = ?, state_version = state_version + 1 "
            f"WHERE tenant = ? AND session_id = ? AND {pinned}{expected}",
            (op.to_number, op.at_ms, dumps(state), *guard),
        )
    if cur.rowcount != 1:
        _repin_refused(conn, tenant, op)
    if live != op.to_number:  # raised after the update: the unit rolls it back
        raise Conflict(
            f"{version_label(op.to_number)} is not the live version of {tenant} "
            f"(live: {_label(live)})"
        )
    trace = conn.execute(
        "SELECT pending_trace_id FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, op.session_id),
    ).fetchone()[0]
    insert_event(
        conn,
        FabricEvent(
            EventKind.SESSION_REPINNED,
            op.at_ms,
            Correlation(
                tenant,
                trace or new_trace_id(),
                op.session_id,
                config_version=version_label(op.to_number),
            ),
            {
                "from": None if op.from_number is None else version_label(op.from_number),
                "to": version_label(op.to_number),
                "reason": op.reason,
                "migrated": migrated,
            },
        ),
    )


def _repin_refused(conn: SqlConnection, tenant: str, op: RepinSession) -> NoReturn:
    """Why ``op``'s update matched no row."""
    current = fetch_session(conn, tenant, op.session_id)
    if current is None:
        raise Conflict(f"no session {op.session_id}")
    if current.config_version != op.from_number:
        raise Conflict(
            f"session {op.session_id} is pinned to {_label(current.config_version)}, "
            f"not {_label(op.from_number)}"
        )
    raise VersionConflict(
        f"session {op.session_id} state is at version {current.state_version}, "
        f"not {op.expected_state_version}"
    )


def _label(number: int | None) -> str:
    return "no version" if number is None else version_label(number)


# What holds a close, each a condition on the session row ``s`` (the idle scan's, in
# adapters/sql/recovery.py, checked again in the close's own transaction), by its reason.
_CLOSE_HOLDS = (
    (
        "live_turn",
        "EXISTS (SELECT 1 FROM turns t WHERE t.tenant = s.tenant "
        f"AND t.session_id = s.session_id AND t.phase IN {LIVE_PHASES})",
    ),
    (
        "undelivered",
        "EXISTS (SELECT 1 FROM outbox o WHERE o.tenant = s.tenant "
        "AND o.session_id = s.session_id AND o.status = 'pending')",
    ),
    (
        "replay",
        "EXISTS (SELECT 1 FROM dead_letters d WHERE d.tenant = s.tenant "
        "AND d.session_id = s.session_id AND d.replay_requested_at_ms IS NOT NULL "
        "AND d.replayed_at_ms IS NULL)",
    ),
)
_CLOSE = (
    "UPDATE sessions AS s SET status = 'closed', closed_at_ms = ?, updated_at_ms = ? "
    "WHERE s.tenant = ? AND s.session_id = ? AND s.status = 'open' "
    "AND s.last_seq = s.consumed_seq" + "".join(f" AND NOT {held}" for _, held in _CLOSE_HOLDS)
)


@executes(CloseSession)
def _close(conn: SqlConnection, tenant: str, op: CloseSession) -> None:
    """The close and its guards in one statement: no message, live turn, undelivered reply
    or requested replay can land between a check and the close (``Conflict`` names it)."""
    require_tenant(tenant, op.tenant)
    cur = conn.execute(_CLOSE, (op.at_ms, op.at_ms, tenant, op.session_id))
    current = fetch_session(conn, tenant, op.session_id)
    if current is None:
        raise Conflict(f"no session {op.session_id}")
    if cur.rowcount != 1:
        if current.status is not SessionStatus.OPEN:
            raise Conflict("closed")
        if current.has_unconsumed:
            raise Conflict("unconsumed")
        for reason, held in _CLOSE_HOLDS:
            row = conn.execute(
                f"SELECT 1 FROM sessions s WHERE s.tenant = ? AND s.session_id = ? AND {held}",
                (tenant, op.session_id),
            ).fetchone()
            if row is not None:
                raise Conflict(reason)
        raise Conflict("refused")  # a guard held, and no longer does
    pinned = current.config_version
    insert_event(
        conn,
        FabricEvent(
            EventKind.SESSION_CLOSED,
            op.at_ms,
            Correlation(
                tenant,
                new_trace_id(),
                op.session_id,
                config_version=None if pinned is None else version_label(pinned),
            ),
            {"reason": op.reason, "idle_since_ms": op.idle_since_ms},
        ),
    )


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: TenantId, session_id: SessionId) -> SessionRecord | None:
        return await self._db.read(tenant, lambda conn: fetch_session(conn, tenant, session_id))

    async def find_open(self, tenant: TenantId, key: SessionKey) -> SessionRecord | None:
        if key.tenant != tenant:
            return None

        def run(conn: SqlConnection) -> SessionRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE tenant = ? AND agent = ? "
                "AND customer = ? AND channel = ? AND status = 'open'",
                (tenant, key.agent, key.customer, key.channel.value),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._db.read(tenant, run)

    async def list_sessions(
        self, tenant: TenantId, where: SessionFilter | None = None
    ) -> list[SessionRecord]:
        where = where or SessionFilter()
        sql = [f"SELECT {_COLUMNS} FROM sessions WHERE tenant = ?"]
        args: list[Any] = [tenant]
        if where.flagged is not None:
            sql.append("AND flagged = ?")
            args.append(where.flagged)
        if where.status is not None:
            sql.append("AND status = ?")
            args.append(where.status.value)
        if where.customer is not None:
            sql.append("AND customer = ?")
            args.append(where.customer)
        if where.mode is not None:
            sql.append("AND mode = ?")
            args.append(where.mode.value)
        sql.append("ORDER BY updated_at_ms DESC, session_id LIMIT ?")
        args.append(where.limit)
        statement = " ".join(sql)
        return await self._db.read(
            tenant, lambda conn: [_record(r) for r in conn.execute(statement, args)]
        )
