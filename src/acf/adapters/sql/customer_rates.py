"""Per-customer message counters in the store (both dialects). Being written (issue 22, H5)."""

from acf.adapters.sql.database import Database
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.firewall import RateCounts


class SqlCustomerRates:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        raise NotImplementedError

    async def peek(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        raise NotImplementedError

    async def prune(self, tenant: TenantId, before_ms: int) -> int:
        raise NotImplementedError
