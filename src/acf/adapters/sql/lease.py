"""Session lease: a row per session with a fence that only grows, expiry in store time.

Expiry lets another holder take the lease over; only a take-over (the fence grows) or a
release (``expires_at_ms = 0``) ends a holder's right to write and to renew. A holder that
was merely slow — its lease expired, nobody took it — keeps writing and renews it.
"""

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import executes
from acf.domain.errors import Conflict
from acf.domain.ids import SessionId, TenantId
from acf.ports.clock import Clock
from acf.ports.lease import CheckFence, Lease

RELEASED = 0
"""``expires_at_ms`` of a lease its holder gave up: neither it nor its writes count any more."""


@executes(CheckFence)
def _check(conn: SqlConnection, tenant: str, op: CheckFence) -> None:
    # FOR SHARE (PostgreSQL): a take-over waits for this unit's COMMIT, and this check
    # waits for a take-over's, so the two never interleave.
    row = conn.execute(
        "SELECT fence, expires_at_ms FROM session_leases "
        f"WHERE tenant = ? AND session_id = ?{conn.dialect.lock_shared}",
        (tenant, op.session_id),
    ).fetchone()
    if row is None or row[0] != op.fence or row[1] == RELEASED:
        raise Conflict("fence")


def take_lease(
    conn: SqlConnection, tenant: str, session_id: str, holder: str, ttl_ms: int, now: int
) -> Lease | None:
    """The lease, unless another holder's is live (``None``).

    One statement. A lease seen live is not locked (the ``NOT EXISTS`` reads the snapshot),
    so a loser leaves nothing for the holder's renewals and fence checks to wait on. Only
    an expired (or absent) lease is written, and the ``ON CONFLICT`` condition is checked
    again on the row it locks. A claimant racing a claim not yet committed waits for it,
    then holds the row (without writing it) until its own COMMIT, one round trip later."""
    row = conn.execute(
        "INSERT INTO session_leases (tenant, session_id, holder, fence, expires_at_ms) "
        "SELECT ?, ?, ?, 1, acf_now(?) + ? WHERE NOT EXISTS (SELECT 1 FROM session_leases "
        "WHERE tenant = ? AND session_id = ? AND expires_at_ms > acf_now(?)) "
        "ON CONFLICT (tenant, session_id) DO UPDATE SET "
        "holder = excluded.holder, fence = session_leases.fence + 1, "
        "expires_at_ms = excluded.expires_at_ms "
        "WHERE session_leases.expires_at_ms <= acf_now(?) RETURNING fence, expires_at_ms",
        (tenant, session_id, holder, now, ttl_ms, tenant, session_id, now, now),
    ).fetchone()
    return None if row is None else Lease(tenant, session_id, holder, row[0], row[1])


class SqlSessionLease:
    """``acf_now`` is the store's clock: the caller's on SQLite, the database's on
    PostgreSQL, so processes with skewed clocks still agree on expiry."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def acquire(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> Lease | None:
        now = self._clock.now_ms()
        return await self._db.write_alone(
            tenant, lambda conn: take_lease(conn, tenant, session_id, holder, ttl_ms, now)
        )

    async def renew(self, lease: Lease, ttl_ms: int) -> Lease | None:
        now = self._clock.now_ms()

        def run(conn: SqlConnection) -> Lease | None:
            # Late is fine while the row is still ours: same fence (nobody took it over),
            # not released.
            row = conn.execute(
                "UPDATE session_leases SET expires_at_ms = acf_now(?) + ? "
                "WHERE tenant = ? AND session_id = ? AND holder = ? AND fence = ? "
                "AND expires_at_ms <> ? RETURNING expires_at_ms",
                (now, ttl_ms, lease.tenant, lease.session_id, lease.holder, lease.fence, RELEASED),
            ).fetchone()
            if row is None:
                return None
            return Lease(lease.tenant, lease.session_id, lease.holder, lease.fence, row[0])

        return await self._db.write_alone(lease.tenant, run)

    async def release(self, lease: Lease) -> None:
        def run(conn: SqlConnection) -> None:
            # The row stays so the next fence is still greater than this one.
            conn.execute(
                "UPDATE session_leases SET expires_at_ms = ? WHERE tenant = ? AND session_id = ? "
                "AND holder = ? AND fence = ?",
                (RELEASED, lease.tenant, lease.session_id, lease.holder, lease.fence),
            )

        # Batched: nobody waits on this row (a would-be holder sees the lease live without
        # locking it, and the one about to release it answers its own wake-ups).
        await self._db.write(lease.tenant, run)

    async def current(self, tenant: TenantId, session_id: SessionId) -> Lease | None:
        now = self._clock.now_ms()

        def run(conn: SqlConnection) -> Lease | None:
            row = conn.execute(
                "SELECT holder, fence, expires_at_ms FROM session_leases "
                "WHERE tenant = ? AND session_id = ? AND expires_at_ms > acf_now(?)",
                (tenant, session_id, now),
            ).fetchone()
            return None if row is None else Lease(tenant, session_id, row[0], row[1], row[2])

        return await self._db.read(tenant, run)
