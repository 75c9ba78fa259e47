"""Claims (both dialects): a lease taken and what it guards read, in one transaction."""

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.lease import take_lease
from acf.adapters.sql.messages import newest_of
from acf.adapters.sql.outbox import undelivered_of
from acf.adapters.sql.sessions import fetch_session
from acf.adapters.sql.turns import live_turn_of
from acf.domain.ids import SessionId, TenantId
from acf.ports.claims import DeliveryClaim, SessionClaim
from acf.ports.clock import Clock
from acf.ports.lease import delivery_lease_id


class SqlClaims:
    """As ``SqlSessionLease.acquire``, a transaction of its own (``write_alone``): the lease
    row it locks is held for these few statements only."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def claim_session(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> SessionClaim | None:
        now = self._clock.now_ms()

        def run(conn: SqlConnection) -> SessionClaim | None:
            lease = take_lease(conn, tenant, session_id, holder, ttl_ms, now)
            if lease is None:
                return None
            return SessionClaim(
                lease,
                fetch_session(conn, tenant, session_id),
                live_turn_of(conn, tenant, session_id),
            )

        return await self._db.write_alone(tenant, run)

    async def claim_delivery(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> DeliveryClaim | None:
        now = self._clock.now_ms()
        lease_id = delivery_lease_id(session_id)

        def run(conn: SqlConnection) -> DeliveryClaim | None:
            lease = take_lease(conn, tenant, lease_id, holder, ttl_ms, now)
            if lease is None:
                return None
            return DeliveryClaim(
                lease,
                undelivered_of(conn, tenant, session_id),
                fetch_session(conn, tenant, session_id),
                newest_of(conn, tenant, session_id),
            )

        return await self._db.write_alone(tenant, run)
