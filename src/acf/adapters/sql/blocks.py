"""The block list (both dialects): ``customer_blocks``, at most one unlifted block per
customer and channel (``ux_customer_blocks_active``).

``BlockCustomer`` moves the customer's open sessions on the channel (every agent's) to
``blocked`` with ``mode_reason`` ``block:<block_id>``; sessions opened while the block is
active open blocked (``acf.adapters.sql.sessions.open_session_id``). A block is the
strongest mode: it is set over human mode and a cool-down too, keeping ``mode_until_ms``.
``LiftBlock`` moves the sessions still blocked back to the mode the block interrupted:
``human`` while the session has an open handoff (it stays in the inbox, claimable),
``cooldown`` while the cool-down has not ended (``mode_until_ms`` after the lift), else
``agent``; ``customer.unblocked`` names each session's mode (``modes``). Both write their
event in the same transaction.
"""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import executes, require_tenant
from acf.adapters.sql.session_modes import COOLDOWN_REASON_PREFIX
from acf.adapters.sql.session_rows import lock_customer
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import TenantId
from acf.domain.modes import BLOCK_EXPIRY, block_reason
from acf.ports.firewall import Block, BlockCustomer, LiftBlock

_COLUMNS = (
    "tenant, block_id, channel, customer, reason, created_by, created_at_ms, expires_at_ms, "
    "lifted_at_ms, lifted_by"
)

# What a lift restores (the old row's values: a block keeps ``mode_until_ms``): human mode
# while the session has an open handoff (with its reason), the cool-down the block
# interrupted while it has not ended, else agent mode.
_HANDED_OFF = (
    "EXISTS (SELECT 1 FROM handoffs h WHERE h.tenant = sessions.tenant "
    "AND h.session_id = sessions.session_id AND h.resolved_at_ms IS NULL)"
)
_COOLING = "mode_until_ms IS NOT NULL AND mode_until_ms > ?"
_RESTORED_MODE = (
    f"CASE WHEN {_HANDED_OFF} THEN 'human' WHEN {_COOLING} THEN 'cooldown' ELSE 'agent' END"
)
_RESTORED_REASON = (
    "CASE WHEN "
    + _HANDED_OFF
    + " THEN (SELECT h.reason FROM handoffs h WHERE h.tenant = sessions.tenant "
    "AND h.session_id = sessions.session_id AND h.resolved_at_ms IS NULL) "
    f"WHEN {_COOLING} THEN ? ELSE NULL END"
)
_RESTORED_UNTIL = f"CASE WHEN {_HANDED_OFF} THEN NULL WHEN {_COOLING} THEN mode_until_ms END"
COOLDOWN_REASON = f"{COOLDOWN_REASON_PREFIX}resumed"
"""``mode_reason`` of a cool-down a lift restores (the detector's name was replaced by the
block's reason)."""


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
    **extra: Any,
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
                **extra,
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
    restored = {
        str(r[0]): str(r[1])
        for r in conn.execute(
            f"UPDATE sessions SET mode = {_RESTORED_MODE}, mode_reason = {_RESTORED_REASON}, "
            f"mode_since_ms = ?, mode_until_ms = {_RESTORED_UNTIL} "
            "WHERE tenant = ? AND channel = ? AND customer = ? "
            "AND status = 'open' AND mode = 'blocked' RETURNING session_id, mode",
            (
                at_ms,
                at_ms,
                COOLDOWN_REASON,
                at_ms,
                at_ms,
                tenant,
                block.channel.value,
                block.customer,
            ),
        )
    }
    _event(
        conn,
        EventKind.CUSTOMER_UNBLOCKED,
        block,
        sorted(restored),
        at_ms,
        trace_id,
        by,
        modes=dict(sorted(restored.items())),
    )
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
        _lift(conn, tenant, existing.block_id, BLOCK_EXPIRY, op.at_ms, op.trace_id)
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
            # ``mode_until_ms`` kept: a cool-down the block interrupts resumes at its lift
            "UPDATE sessions SET mode = 'blocked', mode_reason = ?, mode_since_ms = ? "
            "WHERE tenant = ? AND channel = ? AND customer = ? "
            "AND status = 'open' RETURNING session_id",
            (block_reason(op.block_id), op.at_ms, tenant, op.channel.value, op.customer),
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
