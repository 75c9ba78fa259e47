"""The block list (both dialects). Being written (issue 22, helper H5)."""

from acf.adapters.sql.database import Database
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.firewall import Block


class SqlBlocks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: TenantId, block_id: str) -> Block | None:
        raise NotImplementedError

    async def active(self, tenant: TenantId, channel: Channel, customer: str) -> Block | None:
        raise NotImplementedError

    async def list_blocks(
        self, tenant: TenantId, include_lifted: bool = False, limit: int = 200
    ) -> list[Block]:
        raise NotImplementedError

    async def expired(self, tenant: TenantId, now_ms: int, limit: int = 100) -> list[Block]:
        raise NotImplementedError
