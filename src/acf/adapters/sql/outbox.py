"""Outbox (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.identities import route_to_session
from acf.adapters.sql.registry import dumps, executes, loads
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.ids import SessionId, TenantId
from acf.domain.signals import DeliveryStatus
from acf.ports.identities import RouteToSession
from acf.ports.outbox import (
    ApplyDeliveryStatus,
    CutUnsentPart,
    EnqueueFallback,
    EnqueueReply,
    OutboxRow,
    RecordAttempt,
    RecordPartsSent,
)

_COLUMNS = (
    "outbox_id, session_id, turn_id, position, payload, status, attempts, "
    "provider_message_id, error, created_at_ms, updated_at_ms, channel, address, fallback_of, "
    "parts_sent, (SELECT t.trace_id FROM turns t WHERE t.tenant = outbox.tenant "
    "AND t.turn_id = outbox.turn_id)"
)
# A fallback copy is sent in its original's place.
_ORDER = "COALESCE(sort_id, outbox_id), outbox_id"


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(
        outbox_id=r[0],
        session_id=r[1],
        turn_id=r[2],
        position=r[3],
        payload=loads(r[4]),
        status=DeliveryStatus(r[5]),
        attempts=r[6],
        provider_message_id=r[7],
        error=r[8],
        created_at_ms=r[9],
        updated_at_ms=r[10],
        route=None if r[11] is None else Route(Channel(r[11]), r[12]),
        fallback_of=r[13],
        parts_sent=r[14],
        trace_id=r[15],
    )


@executes(EnqueueReply)
def _enqueue(conn: SqlConnection, tenant: str, op: EnqueueReply) -> int:
    route = op.route
    cur = conn.execute(
        "INSERT INTO outbox (tenant, session_id, turn_id, position, payload, status, attempts, "
        "created_at_ms, updated_at_ms, channel, address) "
        "VALUES (?,?,?,?,?,'pending',0,?,?,?,?) RETURNING outbox_id",
        (
            tenant,
            op.session_id,
            op.turn_id,
            op.position,
            dumps(dict(op.payload)),
            op.at_ms,
            op.at_ms,
            None if route is None else route.channel.value,
            None if route is None else route.address,
        ),
    )
    return int(cur.fetchone()[0])


@executes(EnqueueFallback)
def _fallback(conn: SqlConnection, tenant: str, op: EnqueueFallback) -> int:
    failed = conn.execute(
        "SELECT o.session_id, o.turn_id, o.position, o.payload, o.sort_id, o.channel, "
        "o.address, s.agent FROM outbox o JOIN sessions s "
        "ON s.tenant = o.tenant AND s.session_id = o.session_id "
        "WHERE o.tenant = ? AND o.outbox_id = ?",
        (tenant, op.failed_outbox_id),
    ).fetchone()
    if failed is None:
        raise Conflict(f"no outbox row {op.failed_outbox_id} in an existing session")
    session_id, turn_id, position, payload, sort_id, channel, address, agent = failed
    copy = dict(loads(payload))
    copy["fallback"] = {"of": op.failed_outbox_id, "tried": list(op.tried)}
    row = conn.execute(
        "INSERT INTO outbox (tenant, session_id, turn_id, position, payload, status, attempts, "
        "created_at_ms, updated_at_ms, channel, address, fallback_of, sort_id) "
        "VALUES (?,?,?,?,?,'pending',0,?,?,?,?,?,?) "
        "ON CONFLICT (tenant, fallback_of) DO NOTHING RETURNING outbox_id",
        (
            tenant,
            session_id,
            turn_id,
            position,
            dumps(copy),
            op.at_ms,
            op.at_ms,
            op.route.channel.value,
            op.route.address,
            op.failed_outbox_id,
            op.failed_outbox_id if sort_id is None else sort_id,
        ),
    ).fetchone()
    if row is None:  # the key says it: this row already fell back
        raise Conflict(f"outbox row {op.failed_outbox_id} already has its fallback copy")
    outbox_id = int(row[0])
    route_to_session(conn, tenant, RouteToSession(agent, op.route, session_id, op.at_ms))
    data = {
        "outbox_id": op.failed_outbox_id,
        "fallback_outbox_id": outbox_id,
        "turn_id": turn_id,
        "position": position,
        "from": None if channel is None else {"channel": channel, "address": address},
        "to": op.route.as_payload(),
        "reason": op.reason,
    }
    insert_event(conn, FabricEvent(EventKind.RESPONSE_FALLBACK, op.at_ms, op.correlation, data))
    return outbox_id


@executes(RecordAttempt)
def _attempt(conn: SqlConnection, tenant: str, op: RecordAttempt) -> int:
    route = op.route
    row = conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, updated_at_ms = ?, "
        "channel = COALESCE(channel, ?), address = COALESCE(address, ?) "
        "WHERE tenant = ? AND outbox_id = ? RETURNING attempts",
        (
            op.at_ms,
            None if route is None else route.channel.value,
            None if route is None else route.address,
            tenant,
            op.outbox_id,
        ),
    ).fetchone()
    if row is None:
        raise Conflict(f"no outbox row {op.outbox_id}")
    return int(row[0])


@executes(RecordPartsSent)
def _parts(conn: SqlConnection, tenant: str, op: RecordPartsSent) -> None:
    if op.parts < 1:
        return
    found = conn.execute(
        "UPDATE outbox SET parts_sent = parts_sent + ?, updated_at_ms = ? "
        "WHERE tenant = ? AND outbox_id = ? RETURNING parts_sent",
        (op.parts, op.at_ms, tenant, op.outbox_id),
    ).fetchone()
    if found is None:
        raise Conflict(f"no outbox row {op.outbox_id}")


@executes(ApplyDeliveryStatus)
def _status(conn: SqlConnection, tenant: str, op: ApplyDeliveryStatus) -> bool:
    row = conn.execute(
        "SELECT status FROM outbox WHERE tenant = ? AND outbox_id = ?", (tenant, op.outbox_id)
    ).fetchone()
    if row is None:
        raise Conflict(f"no outbox row {op.outbox_id}")
    if not op.status.may_follow(DeliveryStatus(row[0])):
        if op.guard:
            raise Conflict(f"outbox row {op.outbox_id} is already {row[0]}, not before {op.status}")
        return False
    conn.execute(
        "UPDATE outbox SET status = ?, updated_at_ms = ?, "
        "provider_message_id = COALESCE(?, provider_message_id), error = COALESCE(?, error) "
        "WHERE tenant = ? AND outbox_id = ?",
        (op.status.value, op.at_ms, op.provider_message_id, op.error, tenant, op.outbox_id),
    )
    return True


@executes(CutUnsentPart)
def _cut(conn: SqlConnection, tenant: str, op: CutUnsentPart) -> None:
    # One statement: the row's own conditions and the newer message are read together, so
    # a send recorded or a turn committed meanwhile cannot be overtaken.
    cut = conn.execute(
        "UPDATE outbox SET status = 'cut', updated_at_ms = ? "
        "WHERE tenant = ? AND outbox_id = ? AND status = 'pending' AND attempts = 0 "
        "AND parts_sent = 0 AND position > 0 AND EXISTS (SELECT 1 FROM turns t "
        "JOIN sessions s ON s.tenant = t.tenant AND s.session_id = t.session_id "
        "WHERE t.tenant = outbox.tenant AND t.turn_id = outbox.turn_id "
        "AND t.session_id = outbox.session_id AND s.last_seq > t.to_seq) "
        "RETURNING outbox_id",
        (op.at_ms, tenant, op.outbox_id),
    ).fetchone()
    if cut is None:
        raise Conflict(f"outbox row {op.outbox_id} may not be cut")


def undelivered_of(conn: SqlConnection, tenant: str, session_id: str) -> list[OutboxRow]:
    """The session's pending rows, in delivery order."""
    return [
        _row(r)
        for r in conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE tenant = ? AND session_id = ? "
            f"AND status = 'pending' ORDER BY {_ORDER}",
            (tenant, session_id),
        )
    ]


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _select(self, where: str, args: tuple[Any, ...]) -> list[OutboxRow]:
        tenant = str(args[0])  # every query here names the tenant first
        statement = f"SELECT {_COLUMNS} FROM outbox WHERE {where}"
        return await self._db.read(
            tenant, lambda conn: [_row(r) for r in conn.execute(statement, args)]
        )

    async def get(self, tenant: TenantId, outbox_id: int) -> OutboxRow | None:
        rows = await self._select("tenant = ? AND outbox_id = ?", (tenant, outbox_id))
        return rows[0] if rows else None

    async def undelivered(self, tenant: TenantId, session_id: SessionId) -> list[OutboxRow]:
        return await self._db.read(tenant, lambda conn: undelivered_of(conn, tenant, session_id))

    async def find_by_provider_id(
        self, tenant: TenantId, provider_message_id: str
    ) -> OutboxRow | None:
        rows = await self._select(
            "tenant = ? AND provider_message_id = ?", (tenant, provider_message_id)
        )
        return rows[0] if rows else None

    async def for_session(
        self, tenant: TenantId, session_id: SessionId, last: int | None = None
    ) -> list[OutboxRow]:
        if last is None:
            return await self._select(
                "tenant = ? AND session_id = ? ORDER BY outbox_id", (tenant, session_id)
            )
        rows = await self._select(
            "tenant = ? AND session_id = ? ORDER BY outbox_id DESC LIMIT ?",
            (tenant, session_id, last),
        )
        return rows[::-1]
