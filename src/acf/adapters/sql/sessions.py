"""Session store (both dialects): the reads, and the writes of a session's sequence marks,
state, flag, version pin and close. Opening a session (and how its row reads) is in
``session_rows``; the mode writes are in ``session_modes``."""

from typing import Any, NoReturn

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import dumps, executes, require_tenant
from acf.adapters.sql.schema import LIVE_PHASES
from acf.adapters.sql.session_rows import (
    SESSION_COLUMNS,
    assigned_version,
    fetch_session,
    open_session_id,
    require_session,
    session_record,
)
from acf.domain import state as state_contract
from acf.domain.config_versions import version_label
from acf.domain.errors import Conflict, VersionConflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_trace_id
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

__all__ = ["SqlSessionStore", "assigned_version", "fetch_session", "open_session_id"]


@executes(PatchState)
def _patch(conn: SqlConnection, tenant: str, op: PatchState) -> int:
    current = require_session(conn, tenant, op.session_id)
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
    # One statement when the range may be consumed, its checks made on the row it locks
    # (PostgreSQL re-checks them on the row's newest version when it had to wait for it:
    # a mode change committing meanwhile refuses the consume).
    # The next turn inherits the trace of the oldest message left unconsumed, if any.
    mode_guard = "" if op.mode is None else " AND mode = ?"
    cur = conn.execute(
        "UPDATE sessions SET consumed_seq = ?, updated_at_ms = ?, pending_trace_id = "
        "(SELECT trace_id FROM messages WHERE tenant = ? AND session_id = ? AND seq = ?) "
        "WHERE tenant = ? AND session_id = ? AND consumed_seq = ? AND ? BETWEEN ? AND last_seq "
        "AND (NOT ? OR last_seq = ?)" + mode_guard,
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
            *(() if op.mode is None else (op.mode.value,)),
        ),
    )
    if cur.rowcount == 1:
        return
    row = conn.execute(
        "SELECT consumed_seq, last_seq, mode FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, op.session_id),
    ).fetchone()
    if row is None:
        raise Conflict(f"no session {op.session_id}")
    consumed, last, mode = row
    # The mode first: a turn whose session left its mode stands down, whatever else moved.
    if op.mode is not None and mode != op.mode.value:
        raise Conflict("mode")
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
    "AND s.last_seq = s.consumed_seq AND s.mode = 'agent'"
    + "".join(f" AND NOT {held}" for _, held in _CLOSE_HOLDS)
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
        if current.mode is not SessionMode.AGENT:
            raise Conflict("mode")
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
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND agent = ? "
                "AND customer = ? AND channel = ? AND status = 'open'",
                (tenant, key.agent, key.customer, key.channel.value),
            ).fetchone()
            return None if row is None else session_record(row)

        return await self._db.read(tenant, run)

    async def list_sessions(
        self, tenant: TenantId, where: SessionFilter | None = None
    ) -> list[SessionRecord]:
        where = where or SessionFilter()
        sql = [f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = ?"]
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
            tenant, lambda conn: [session_record(r) for r in conn.execute(statement, args)]
        )
