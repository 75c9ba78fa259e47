"""Turn store: turns, turn groups and turn records (both dialects)."""

from dataclasses import asdict
from typing import Any

from acf.adapters.sql.database import INTEGRITY_ERRORS, Database, SqlConnection
from acf.adapters.sql.lease import RELEASED
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.domain.config_versions import record_facts
from acf.domain.errors import Conflict
from acf.domain.events import Correlation
from acf.domain.ids import GroupId, SessionId, TenantId, TurnId
from acf.domain.modes import TurnKind
from acf.domain.records import TurnRecord
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.turn_store import (
    CreateTurn,
    MarkIrreversibleStarted,
    MoveTurn,
    OpenGroup,
    SaveTurnRecord,
    UpdateGroup,
)

_TURN = (
    "tenant, turn_id, session_id, group_id, phase, from_seq, to_seq, attempt, fence, "
    "irreversible_started, trace_id, created_at_ms, updated_at_ms, kind"
)
# The turn's writer must still hold the session's lease with the given fence (param: fence):
# a copy of the fence on the turn row alone would let a holder that was taken over, or that
# released the lease, write. Expiry alone does not end it (see ``lease.py``).
_LEASE_HELD = (
    "EXISTS (SELECT 1 FROM session_leases l WHERE l.tenant = turns.tenant "
    f"AND l.session_id = turns.session_id AND l.fence = ? AND l.expires_at_ms <> {RELEASED})"
)
_GROUP = "tenant, group_id, session_id, status, restarts, attempts, created_at_ms"


def _turn(row: tuple[Any, ...]) -> Turn:
    return Turn(
        tenant=row[0],
        turn_id=row[1],
        session_id=row[2],
        group_id=row[3],
        phase=TurnPhase(row[4]),
        from_seq=row[5],
        to_seq=row[6],
        attempt=row[7],
        fence=row[8],
        irreversible_started=bool(row[9]),
        trace_id=row[10],
        created_at_ms=row[11],
        updated_at_ms=row[12],
        kind=TurnKind(row[13]),
    )


def _group(row: tuple[Any, ...]) -> TurnGroup:
    return TurnGroup(row[0], row[1], row[2], GroupStatus(row[3]), row[4], row[5], row[6])


def _record_json(record: TurnRecord) -> str:
    body = asdict(record)
    body["outcome"] = record.outcome.value
    return dumps(body)


def _record(text: str) -> TurnRecord:
    body = loads(text)
    body["correlation"] = Correlation(**body["correlation"])
    body["outcome"] = TurnPhase(body["outcome"])
    body["replies"] = tuple(body["replies"])
    return TurnRecord(**body)


@executes(OpenGroup)
def _open_group(conn: SqlConnection, tenant: str, op: OpenGroup) -> None:
    g = op.group
    require_tenant(tenant, g.tenant)
    conn.execute(
        "INSERT INTO turn_groups (tenant, group_id, session_id, status, restarts, attempts, "
        "created_at_ms, updated_at_ms) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT (tenant, group_id) DO NOTHING",
        (
            tenant,
            g.group_id,
            g.session_id,
            g.status.value,
            g.restarts,
            g.attempts,
            g.created_at_ms,
            g.created_at_ms,
        ),
    )


@executes(UpdateGroup)
def _update_group(conn: SqlConnection, tenant: str, op: UpdateGroup) -> None:
    # The counters only grow: a unit that does not know them (a turn standing down for its
    # session's mode) passes 0 and keeps them.
    cur = conn.execute(
        "UPDATE turn_groups SET status = ?, "
        "restarts = CASE WHEN restarts > ? THEN restarts ELSE ? END, "
        "attempts = CASE WHEN attempts > ? THEN attempts ELSE ? END "
        "WHERE tenant = ? AND group_id = ? AND status = 'open'",
        (
            op.status.value,
            op.restarts,
            op.restarts,
            op.attempts,
            op.attempts,
            tenant,
            op.group_id,
        ),
    )
    if cur.rowcount == 0:
        raise Conflict("group")


@executes(CreateTurn)
def _create(conn: SqlConnection, tenant: str, op: CreateTurn) -> None:
    t = op.turn
    require_tenant(tenant, t.tenant)
    try:
        conn.execute(
            f"INSERT INTO turns ({_TURN}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                tenant,
                t.turn_id,
                t.session_id,
                t.group_id,
                t.phase.value,
                t.from_seq,
                t.to_seq,
                t.attempt,
                t.fence,
                t.irreversible_started,
                t.trace_id,
                t.created_at_ms,
                t.updated_at_ms,
                t.kind.value,
            ),
        )
    except INTEGRITY_ERRORS:
        raise Conflict("live_turn") from None


@executes(MoveTurn)
def _move(conn: SqlConnection, tenant: str, op: MoveTurn) -> None:
    if not op.expected.can_move_to(op.target):
        raise Conflict(f"phase {op.expected.value} cannot move to {op.target.value}")
    holder_fence = op.fence if op.new_fence is None else op.new_fence
    cur = conn.execute(
        "UPDATE turns SET phase = ?, updated_at_ms = ?, to_seq = COALESCE(?, to_seq), "
        "attempt = COALESCE(?, attempt), fence = COALESCE(?, fence) "
        f"WHERE tenant = ? AND turn_id = ? AND phase = ? AND fence = ? AND {_LEASE_HELD}",
        (
            op.target.value,
            op.at_ms,
            op.to_seq,
            op.new_attempt,
            op.new_fence,
            tenant,
            op.turn_id,
            op.expected.value,
            op.fence,
            holder_fence,
        ),
    )
    if cur.rowcount == 0:
        raise Conflict("turn")


# The session answers as the agent (the turn's commit guard, DESIGN §4): a gate that a
# handoff, cool-down or block reached first refuses; one that passed first makes the turn
# finish (its commit is then silent).
_AGENT_MODE = (
    "(SELECT s.mode FROM sessions s WHERE s.tenant = turns.tenant "
    "AND s.session_id = turns.session_id) = 'agent'"
)


@executes(MarkIrreversibleStarted)
def _gate(conn: SqlConnection, tenant: str, op: MarkIrreversibleStarted) -> None:
    # The session row first, FOR SHARE (PostgreSQL): a mode change committing meanwhile
    # (a handoff, a cool-down, a block) and the gate are ordered. One in progress is waited
    # for, and the update below (a statement of its own, so a newer snapshot) reads the
    # mode it committed; one that comes later waits for this unit's end (the turn passed
    # the gate: it finishes silently). SQLite's write transactions are serial.
    conn.execute(
        "SELECT mode FROM sessions WHERE tenant = ? AND session_id = "
        "(SELECT session_id FROM turns WHERE tenant = ? AND turn_id = ?)"
        + conn.dialect.lock_shared,
        (tenant, tenant, op.turn_id),
    ).fetchone()
    cur = conn.execute(
        "UPDATE turns SET irreversible_started = TRUE, updated_at_ms = ? "
        f"WHERE tenant = ? AND turn_id = ? AND fence = ? AND phase = 'running' AND {_LEASE_HELD} "
        f"AND {_AGENT_MODE} "
        "AND (? OR to_seq = (SELECT last_seq FROM sessions s "
        "WHERE s.tenant = turns.tenant AND s.session_id = turns.session_id))",
        (op.at_ms, tenant, op.turn_id, op.fence, op.fence, op.force),
    )
    if cur.rowcount == 1:
        return
    row = conn.execute(
        f"SELECT fence, phase, {_LEASE_HELD}, {_AGENT_MODE} FROM turns "
        "WHERE tenant = ? AND turn_id = ?",
        (op.fence, tenant, op.turn_id),
    ).fetchone()
    if row is None or row[0] != op.fence or not row[2]:
        raise Conflict("fence")
    if row[1] != TurnPhase.RUNNING.value:
        raise Conflict("phase")
    if not row[3]:
        raise Conflict("mode")
    raise Conflict("new_messages")


@executes(SaveTurnRecord)
def _save_record(conn: SqlConnection, tenant: str, op: SaveTurnRecord) -> None:
    c = op.record.correlation
    require_tenant(tenant, c.tenant)
    if c.turn_id is None or c.session_id is None:
        raise Conflict("a turn record needs turn_id and session_id")
    facts = record_facts(op.record)
    try:
        conn.execute(
            "INSERT INTO turn_records (tenant, turn_id, session_id, record, created_at_ms, "
            "config_version, outcome, category, fallback, handoff, duration_ms) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                tenant,
                c.turn_id,
                c.session_id,
                _record_json(op.record),
                op.record.ended_at_ms,
                c.config_version,
                op.record.outcome.value,
                facts.category,
                facts.fallback,
                facts.handoff,
                facts.duration_ms,
            ),
        )
    except INTEGRITY_ERRORS:
        raise Conflict("record_exists") from None


def live_turn_of(conn: SqlConnection, tenant: str, session_id: str) -> Turn | None:
    """The session's accumulating or running turn, if any."""
    row = conn.execute(
        f"SELECT {_TURN} FROM turns WHERE tenant = ? AND session_id = ? "
        "AND phase IN ('accumulating', 'running')",
        (tenant, session_id),
    ).fetchone()
    return None if row is None else _turn(row)


class SqlTurnStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _turns(self, where: str, args: tuple[Any, ...]) -> list[Turn]:
        tenant = str(args[0])  # every query here names the tenant first
        statement = f"SELECT {_TURN} FROM turns WHERE {where}"
        return await self._db.read(
            tenant, lambda conn: [_turn(r) for r in conn.execute(statement, args)]
        )

    async def get(self, tenant: TenantId, turn_id: TurnId) -> Turn | None:
        rows = await self._turns("tenant = ? AND turn_id = ?", (tenant, turn_id))
        return rows[0] if rows else None

    async def live_turn(self, tenant: TenantId, session_id: SessionId) -> Turn | None:
        return await self._db.read(tenant, lambda conn: live_turn_of(conn, tenant, session_id))

    async def list_turns(self, tenant: TenantId, session_id: SessionId) -> list[Turn]:
        return await self._turns(
            f"tenant = ? AND session_id = ? ORDER BY {self._db.dialect.turn_order}",
            (tenant, session_id),
        )

    async def get_group(self, tenant: TenantId, group_id: GroupId) -> TurnGroup | None:
        def run(conn: SqlConnection) -> TurnGroup | None:
            row = conn.execute(
                f"SELECT {_GROUP} FROM turn_groups WHERE tenant = ? AND group_id = ?",
                (tenant, group_id),
            ).fetchone()
            return None if row is None else _group(row)

        return await self._db.read(tenant, run)

    async def get_record(self, tenant: TenantId, turn_id: TurnId) -> TurnRecord | None:
        def run(conn: SqlConnection) -> TurnRecord | None:
            row = conn.execute(
                "SELECT record FROM turn_records WHERE tenant = ? AND turn_id = ?",
                (tenant, turn_id),
            ).fetchone()
            return None if row is None else _record(row[0])

        return await self._db.read(tenant, run)
