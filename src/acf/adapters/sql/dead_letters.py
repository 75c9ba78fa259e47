"""Dead letters (both dialects): recorded once per id, replay requested at most once.

``RequestReplay`` claims the replay with a guarded update (``replay_requested_at_ms IS
NULL``): on PostgreSQL a concurrent claim waits for the first to end and then finds the
row taken, so of two claims exactly one succeeds. ``FinishReplay`` records the REPLAY turn
once, on a letter whose replay was requested.
"""

from collections.abc import Sequence
from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import dumps, executes, loads, require_tenant
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.ids import SessionId, TenantId
from acf.ports.dead_letters import (
    AlreadyReplayed,
    DeadLetter,
    FinishReplay,
    NoSuchDeadLetter,
    RecordDeadLetter,
    RequestReplay,
)

_COLUMNS = (
    "tenant, dead_letter_id, session_id, agent, turn_id, group_id, trace_id, pipeline, "
    "error, attempts, request, created_at_ms, replay_requested_at_ms, replay_turn_id, "
    "replayed_at_ms"
)
_NEWEST_FIRST = "created_at_ms DESC, dead_letter_id DESC"


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        tenant=row[0],
        dead_letter_id=row[1],
        session_id=row[2],
        agent=row[3],
        turn_id=row[4],
        group_id=row[5],
        trace_id=row[6],
        pipeline=row[7],
        error=row[8],
        attempts=row[9],
        request=loads(row[10]),
        created_at_ms=row[11],
        replay_requested_at_ms=row[12],
        replay_turn_id=row[13],
        replayed_at_ms=row[14],
    )


def _replay_state(conn: SqlConnection, tenant: str, dead_letter_id: str) -> tuple[Any, ...]:
    """(replay_requested_at_ms, replayed_at_ms) of the letter; ``NoSuchDeadLetter`` if none."""
    row = conn.execute(
        "SELECT replay_requested_at_ms, replayed_at_ms FROM dead_letters "
        "WHERE tenant = ? AND dead_letter_id = ?",
        (tenant, dead_letter_id),
    ).fetchone()
    if row is None:
        raise NoSuchDeadLetter(f"no dead letter {dead_letter_id}")
    return tuple(row)


@executes(RecordDeadLetter)
def _record(conn: SqlConnection, tenant: str, op: RecordDeadLetter) -> None:
    d = op.letter
    require_tenant(tenant, d.tenant)
    conn.execute(
        f"INSERT INTO dead_letters ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (tenant, dead_letter_id) DO NOTHING",
        (
            tenant,
            d.dead_letter_id,
            d.session_id,
            d.agent,
            d.turn_id,
            d.group_id,
            d.trace_id,
            d.pipeline,
            d.error,
            d.attempts,
            dumps(dict(d.request)),
            d.created_at_ms,
            d.replay_requested_at_ms,
            d.replay_turn_id,
            d.replayed_at_ms,
        ),
    )


@executes(RequestReplay)
def _request(conn: SqlConnection, tenant: str, op: RequestReplay) -> None:
    cur = conn.execute(
        "UPDATE dead_letters SET replay_requested_at_ms = ? "
        "WHERE tenant = ? AND dead_letter_id = ? AND replay_requested_at_ms IS NULL",
        (op.at_ms, tenant, op.dead_letter_id),
    )
    if cur.rowcount == 0:
        _replay_state(conn, tenant, op.dead_letter_id)  # raises when there is no such letter
        raise AlreadyReplayed(f"dead letter {op.dead_letter_id} was replayed before")


@executes(FinishReplay)
def _finish(conn: SqlConnection, tenant: str, op: FinishReplay) -> None:
    cur = conn.execute(
        "UPDATE dead_letters SET replay_turn_id = ?, replayed_at_ms = ? "
        "WHERE tenant = ? AND dead_letter_id = ? "
        "AND replay_requested_at_ms IS NOT NULL AND replayed_at_ms IS NULL",
        (op.turn_id, op.at_ms, tenant, op.dead_letter_id),
    )
    if cur.rowcount == 0:
        requested, _ = _replay_state(conn, tenant, op.dead_letter_id)
        if requested is None:
            raise Conflict(f"dead letter {op.dead_letter_id}: no replay was requested")
        raise AlreadyReplayed(f"dead letter {op.dead_letter_id} was replayed before")


class SqlDeadLetters:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _letters(
        self, tenant: TenantId, clauses: str, args: tuple[Any, ...]
    ) -> Sequence[DeadLetter]:
        """The tenant's letters; ``clauses`` follow ``WHERE tenant = ?`` (``AND …``,
        ``ORDER BY …``), ``args`` the tenant."""
        statement = f"SELECT {_COLUMNS} FROM dead_letters WHERE tenant = ? {clauses}"
        return await self._db.read(
            tenant, lambda conn: [_letter(r) for r in conn.execute(statement, (tenant, *args))]
        )

    async def get(self, tenant: TenantId, dead_letter_id: str) -> DeadLetter | None:
        found = await self._letters(tenant, "AND dead_letter_id = ?", (dead_letter_id,))
        return found[0] if found else None

    async def list(
        self, tenant: TenantId, *, limit: int = 100, session_id: SessionId | None = None
    ) -> Sequence[DeadLetter]:
        if limit < 1:
            raise InvalidValue(f"limit must be at least 1, not {limit}")
        where, args = ("", ()) if session_id is None else ("AND session_id = ?", (session_id,))
        return await self._letters(
            tenant, f"{where} ORDER BY {_NEWEST_FIRST} LIMIT ?", (*args, limit)
        )

    async def pending_replay(self, tenant: TenantId, session_id: SessionId) -> DeadLetter | None:
        found = await self._letters(
            tenant,
            "AND session_id = ? AND replay_requested_at_ms IS NOT NULL "
            "AND replayed_at_ms IS NULL ORDER BY created_at_ms, dead_letter_id LIMIT 1",
            (session_id,),
        )
        return found[0] if found else None
