"""The block list (both dialects): ``customer_blocks``, at most one unlifted block per
customer and channel (``ux_customer_blocks_active``).

``BlockCustomer`` moves the customer's open sessions on the channel (every agent's) to
``blocked`` with ``mode_reason`` ``block:<block_id>``; sessions opened while the block is
active open blocked (``acf.adapters.sql.sessions.open_session_id``). ``LiftBlock`` moves the
sessions still blocked back to ``agent``. Both write their event in the same transaction.
"""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import executes, require_tenant
from acf.adapters.sql.session_rows import lock_customer
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import TenantId
from acf.ports.firewall import Block, BlockCustomer, LiftBlock

_COLUMNS = (
    "tenant, block_id, channel, customer, reason, created_by, created_at_ms, expires_at_ms, "
    "lifted_at_ms, lifted_by"
)

EXPIRY = "expiry"
"""``lifted_by`` of a block lifted because it expired."""


def _block(row: tuple[Any, ...]) -> Block:
    return Block(
        tenant=row[0],
        block_id=row[1],
        channel=Channel(row[2]),
        customer=row[3],
        reason=row[4],
        created_by=row[5],
        created_at_ms=row[6],
        expires_at_ms=row[7],
        lifted_at_ms=row[8],
        lifted_by=row[9],
    )


def _event(
    conn: SqlConnection,
    kind: EventKind,
    block: Block,
    sessions: list[str],
    at_ms: int,
    trace_id: str,
    by: str,
) -> None:
    insert_event(
        conn,
        FabricEvent(
            kind=kind,
            at_ms=at_ms,
            correlation=Correlation(
                tenant=block.tenant,
                trace_id=trace_id,
                session_id=sessions[0] if len(sessions) == 1 else None,
            ),
            data={
                "block_id": block.block_id,
                "channel": block.channel.value,
                "customer": block.customer,
                "reason": block.reason,
                "by": by,
                "expires_at_ms": block.expires_at_ms,
                "sessions": sessions,
            },
        ),
    )


def _unlifted(conn: SqlConnection, tenant: str, channel: Channel, customer: str) -> Block | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM customer_blocks WHERE tenant = ? AND channel = ? "
        "AND customer = ? AND lifted_at_ms IS NULL",
        (tenant, channel.value, customer),
    ).fetchone()
    return None if row is None else _block(row)


def _lift(
    conn: SqlConnection, tenant: str, block_id: str, by: str, at_ms: int, trace_id: str
) -> Block:
    row = conn.execute(
        "UPDATE customer_blocks SET lifted_at_ms = ?, lifted_by = ? "
        "WHERE tenant = ? AND block_id = ? AND lifted_at_ms IS NULL "
        f"RETURNING {_COLUMNS}",
        (at_ms, by, tenant, block_id),
    ).fetchone()
    if row is None:
        raise Conflict("not_found")
    block = _block(row)
    sessions = [
        str(r[0])
        for r in conn.execute(
            "UPDATE sessions SET mode = 'agent', mode_reason = NULL, mode_since_ms = ?, "
            "mode_until_ms = NULL WHERE tenant = ? AND channel = ? AND customer = ? "
            "AND status = 'open' AND mode = 'blocked' RETURNING session_id",
            (at_ms, tenant, block.channel.value, block.customer),
        )
    ]
    _event(conn, EventKind.CUSTOMER_UNBLOCKED, block, sorted(sessions), at_ms, trace_id, by)
    return block


@executes(BlockCustomer)
def _block_customer(conn: SqlConnection, tenant: str, op: BlockCustomer) -> Block:
    require_tenant(tenant, op.tenant)
    # ordered with the customer's session opens: one opening now is blocked or seen here
    lock_customer(conn, tenant, op.channel.value, op.customer, exclusive=True)
    existing = _unlifted(conn, tenant, op.channel, op.customer)
    if existing is not None:
        if existing.active_at(op.at_ms):
            if op.existing_ok:
                return existing
            raise Conflict("blocked")
        # Expired, not yet lifted by the sweep: lift it here, then block anew.
        _lift(conn, tenant, existing.block_id, EXPIRY, op.at_ms, op.trace_id)
    inserted = conn.execute(
        f"INSERT INTO customer_blocks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,NULL,NULL) "
        "ON CONFLICT (tenant, channel, customer) WHERE lifted_at_ms IS NULL DO NOTHING",
        (
            tenant,
            op.block_id,
            op.channel.value,
            op.customer,
            op.reason,
            op.created_by,
            op.at_ms,
            op.expires_at_ms,
        ),
    ).rowcount
    if not inserted:  # another transaction blocked the customer meanwhile (PostgreSQL)
        winner = _unlifted(conn, tenant, op.channel, op.customer)
        if op.existing_ok and winner is not None:
            return winner
        raise Conflict("blocked")
    block = Block(
        tenant=tenant,
        block_id=op.block_id,
        channel=op.channel,
        customer=op.customer,
        reason=op.reason,
        created_by=op.created_by,
        created_at_ms=op.at_ms,
        expires_at_ms=op.expires_at_ms,
    )
    sessions = [
        str(r[0])
        for r in conn.execute(
            "UPDATE sessions SET mode = 'blocked', mode_reason = ?, mode_since_ms = ?, "
            "mode_until_ms = NULL WHERE tenant = ? AND channel = ? AND customer = ? "
            "AND status = 'open' RETURNING session_id",
            (f"block:{op.block_id}", op.at_ms, tenant, op.channel.value, op.customer),
        )
    ]
    _event(
        conn,
        EventKind.CUSTOMER_BLOCKED,
        block,
        sorted(sessions),
        op.at_ms,
        op.trace_id,
        op.created_by,
    )
    return block


@executes(LiftBlock)
def _lift_block(conn: SqlConnection, tenant: str, op: LiftBlock) -> Block:
    require_tenant(tenant, op.tenant)
    named = conn.execute(
        "SELECT channel, customer FROM customer_blocks WHERE tenant = ? AND block_id = ?",
        (tenant, op.block_id),
    ).fetchone()
    if named is not None:  # ordered with the customer's session opens, as a block is
        lock_customer(conn, tenant, str(named[0]), str(named[1]), exclusive=True)
    return _lift(conn, tenant, op.block_id, op.lifted_by, op.at_ms, op.trace_id)


class SqlBlocks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _select(self, tenant: TenantId, where: str, args: tuple[Any, ...]) -> list[Block]:
        statement = f"SELECT {_COLUMNS} FROM customer_blocks WHERE tenant = ? {where}"
        return await self._db.read(
            tenant, lambda conn: [_block(r) for r in conn.execute(statement, (tenant, *args))]
        )

    async def get(self, tenant: TenantId, block_id: str) -> Block | None:
        rows = await self._select(tenant, "AND block_id = ?", (block_id,))
        return rows[0] if rows else None

    async def active(self, tenant: TenantId, channel: Channel, customer: str) -> Block | None:
        """The unlifted block (one whose expiry passed counts until the sweep lifts it:
        ``Block.active_at`` tells)."""
        rows = await self._select(
            tenant,
            "AND channel = ? AND customer = ? AND lifted_at_ms IS NULL",
            (channel.value, customer),
        )
        return rows[0] if rows else None

    async def list_blocks(
        self, tenant: TenantId, include_lifted: bool = False, limit: int = 200
    ) -> list[Block]:
        where = "" if include_lifted else "AND lifted_at_ms IS NULL "
        return await self._select(
            tenant, where + "ORDER BY created_at_ms DESC, block_id DESC LIMIT ?", (limit,)
        )

    async def expired(self, tenant: TenantId, now_ms: int, limit: int = 100) -> list[Block]:
        return await self._select(
            tenant,
            "AND lifted_at_ms IS NULL AND expires_at_ms IS NOT NULL "
            "AND expires_at_ms <= acf_now(?) ORDER BY expires_at_ms LIMIT ?",
            (now_ms, limit),
        )
