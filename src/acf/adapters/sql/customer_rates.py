"""Per-customer message counters in the store (both dialects): ``customer_counters``, one
row per (customer, channel, bucket, period), counted by an upsert that returns the count.

``CustomerRates`` counts in the ``minute`` and ``day`` buckets; ``CountCustomer`` counts in
any other (the firewall's refusals and cool-downs)."""

from collections.abc import Sequence

from acf.adapters.sql.database import Database, SqlConnection
from acf.adapters.sql.registry import executes, require_tenant
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.firewall import DAY_MS, MINUTE_MS, CountCustomer, RateCounts

MINUTE = "minute"
DAY = "day"

_UPSERT = (
    "INSERT INTO customer_counters (tenant, channel, customer, bucket, bucket_start_ms, count) "
    "VALUES (?,?,?,?,?,?) ON CONFLICT (tenant, channel, customer, bucket, bucket_start_ms) "
    "DO UPDATE SET count = customer_counters.count + excluded.count RETURNING count"
)
_READ = (
    "SELECT count FROM customer_counters WHERE tenant = ? AND channel = ? AND customer = ? "
    "AND bucket = ? AND bucket_start_ms = ?"
)


def bump(
    conn: SqlConnection,
    tenant: str,
    channel: Channel,
    customer: str,
    bucket: str,
    start_ms: int,
    by: int = 1,
) -> int:
    """The bucket's count after adding ``by`` (``by=0``: read only)."""
    if by == 0:
        row = conn.execute(_READ, (tenant, channel.value, customer, bucket, start_ms)).fetchone()
        return 0 if row is None else int(row[0])
    row = conn.execute(_UPSERT, (tenant, channel.value, customer, bucket, start_ms, by)).fetchone()
    return int(row[0])


@executes(CountCustomer)
def _count(conn: SqlConnection, tenant: str, op: CountCustomer) -> int:
    require_tenant(tenant, op.tenant)
    return bump(conn, tenant, op.channel, op.customer, op.bucket, op.bucket_start_ms, op.by)


def _counts(
    conn: SqlConnection, tenant: str, channel: Channel, customer: str, at_ms: int, by: int
) -> RateCounts:
    minute_start = at_ms - at_ms % MINUTE_MS
    minute = bump(conn, tenant, channel, customer, MINUTE, minute_start, by)
    day = bump(conn, tenant, channel, customer, DAY, at_ms - at_ms % DAY_MS, by)
    previous = bump(conn, tenant, channel, customer, MINUTE, minute_start - MINUTE_MS, 0)
    return RateCounts(minute, previous, (at_ms - minute_start) / MINUTE_MS, day)


class SqlCustomerRates:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        return await self._db.write(
            tenant, lambda conn: _counts(conn, tenant, channel, customer, at_ms, 1)
        )

    async def peek(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        return await self._db.read(
            tenant, lambda conn: _counts(conn, tenant, channel, customer, at_ms, 0)
        )

    async def prune(self, tenant: TenantId, before_ms: int) -> int:
        def run(conn: SqlConnection) -> int:
            return conn.execute(
                "DELETE FROM customer_counters WHERE tenant = ? AND bucket_start_ms < ?",
                (tenant, before_ms),
            ).rowcount

        return await self._db.write(tenant, run)

    async def tallies(
        self,
        tenant: TenantId,
        channel: Channel,
        customer: str,
        buckets: Sequence[tuple[str, int]],
    ) -> list[int]:
        def run(conn: SqlConnection) -> list[int]:
            return [bump(conn, tenant, channel, customer, b, start, 0) for b, start in buckets]

        return await self._db.read(tenant, run)
