"""Handoffs and operators' notes (both dialects). Being written (issue 22, helper H3)."""

from acf.adapters.sql.database import Database
from acf.domain.ids import SessionId, TenantId
from acf.ports.handoffs import Handoff, InboxEntry, InboxState, Note


class SqlHandoffs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def current(self, tenant: TenantId, session_id: SessionId) -> Handoff | None:
        raise NotImplementedError

    async def get(self, tenant: TenantId, handoff_id: str) -> Handoff | None:
        raise NotImplementedError

    async def inbox(
        self, tenant: TenantId, state: InboxState, now_ms: int, limit: int = 100
    ) -> list[InboxEntry]:
        raise NotImplementedError

    async def history(self, tenant: TenantId, session_id: SessionId) -> list[Handoff]:
        raise NotImplementedError

    async def notes(self, tenant: TenantId, session_id: SessionId) -> list[Note]:
        raise NotImplementedError
