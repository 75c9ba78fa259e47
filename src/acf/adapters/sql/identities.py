"""Customer identities and session routes (both dialects)."""

from typing import Any

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import executes
from acf.domain.channels import Channel
from acf.domain.fallback import ROUTE_TTL_MS, Route
from acf.domain.ids import SessionId, TenantId
from acf.ports.identities import (
    AddressTaken,
    Identity,
    LinkIdentities,
    RouteToSession,
    UnlinkIdentity,
)


def owner_of(conn: SqlConnection, tenant: str, route: Route) -> str | None:
    row = conn.execute(
        "SELECT customer_id FROM customer_identities "
        "WHERE tenant = ? AND channel = ? AND address = ?",
        (tenant, route.channel.value, route.address),
    ).fetchone()
    return None if row is None else str(row[0])


def routed_session_id(
    conn: SqlConnection, tenant: str, channel: Channel, address: str, now_ms: int
) -> str | None:
    """The open session messages from (channel, address) are routed to: the newest route
    younger than ``ROUTE_TTL_MS``, whichever agent's session it is (the account the
    message came in on may answer with another agent)."""
    row = conn.execute(
        "SELECT r.session_id FROM session_routes r JOIN sessions s "
        "ON s.tenant = r.tenant AND s.session_id = r.session_id AND s.status = 'open' "
        "WHERE r.tenant = ? AND r.channel = ? AND r.address = ? AND r.updated_at_ms > ? "
        "ORDER BY r.updated_at_ms DESC, r.session_id LIMIT 1",
        (tenant, channel.value, address, now_ms - ROUTE_TTL_MS),
    ).fetchone()
    return None if row is None else str(row[0])


@executes(LinkIdentities)
def _link(conn: SqlConnection, tenant: str, op: LinkIdentities) -> int:
    added = 0
    for route in op.routes:
        # The key decides: of two units linking one address at once, one inserts and the
        # other reads the winner below.
        added += conn.execute(
            "INSERT INTO customer_identities (tenant, channel, address, customer_id, "
            "created_at_ms) VALUES (?,?,?,?,?) ON CONFLICT (tenant, channel, address) "
            "DO NOTHING",
            (tenant, route.channel.value, route.address, op.customer_id, op.at_ms),
        ).rowcount
        owner = owner_of(conn, tenant, route)
        if owner != op.customer_id:
            raise AddressTaken(route, str(owner))
    return added


@executes(UnlinkIdentity)
def _unlink(conn: SqlConnection, tenant: str, op: UnlinkIdentity) -> bool:
    cur = conn.execute(
        "DELETE FROM customer_identities "
        "WHERE tenant = ? AND channel = ? AND address = ? AND customer_id = ?",
        (tenant, op.route.channel.value, op.route.address, op.customer_id),
    )
    if cur.rowcount == 0:
        return False
    # The address is no longer theirs (a reassigned number): it stops joining their session.
    conn.execute(
        "DELETE FROM session_routes WHERE tenant = ? AND channel = ? AND address = ?",
        (tenant, op.route.channel.value, op.route.address),
    )
    return True


@executes(RouteToSession)
def route_to_session(conn: SqlConnection, tenant: str, op: RouteToSession) -> None:
    conn.execute(
        "INSERT INTO session_routes (tenant, agent, channel, address, session_id, "
        "updated_at_ms) VALUES (?,?,?,?,?,?) ON CONFLICT (tenant, agent, channel, address) "
        "DO UPDATE SET session_id = excluded.session_id, updated_at_ms = excluded.updated_at_ms",
        (tenant, op.agent, op.route.channel.value, op.route.address, op.session_id, op.at_ms),
    )


def _identity(row: tuple[Any, ...]) -> Identity:
    return Identity(row[0], Route(Channel(row[1]), row[2]), row[3])


class SqlIdentities:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def of_customer(self, tenant: TenantId, customer_id: str) -> list[Identity]:
        def run(conn: SqlConnection) -> list[Identity]:
            rows = conn.execute(
                "SELECT customer_id, channel, address, created_at_ms FROM customer_identities "
                "WHERE tenant = ? AND customer_id = ? ORDER BY channel, address",
                (tenant, customer_id),
            )
            return [_identity(r) for r in rows]

        return await self._db.read(tenant, run)

    async def owner(self, tenant: TenantId, route: Route) -> str | None:
        return await self._db.read(tenant, lambda conn: owner_of(conn, tenant, route))

    async def linked(self, tenant: TenantId, route: Route) -> dict[Channel, str]:
        def run(conn: SqlConnection) -> dict[Channel, str]:
            rows = conn.execute(
                "SELECT i.channel, i.address FROM customer_identities i "
                "JOIN customer_identities me ON me.tenant = i.tenant "
                "AND me.customer_id = i.customer_id "
                "WHERE me.tenant = ? AND me.channel = ? AND me.address = ? "
                "ORDER BY i.created_at_ms DESC, i.address DESC",
                (tenant, route.channel.value, route.address),
            )
            # Oldest last, so the oldest link of each channel wins.
            return {Channel(r[0]): str(r[1]) for r in rows}

        return await self._db.read(tenant, run)

    async def routed_session(self, tenant: TenantId, route: Route, at_ms: int) -> SessionId | None:
        return await self._db.read(
            tenant,
            lambda conn: routed_session_id(conn, tenant, route.channel, route.address, at_ms),
        )
