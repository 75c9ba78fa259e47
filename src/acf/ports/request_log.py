"""Responses of requests sent with an ``Idempotency-Key``: the same key and body get the
same response again; the same key with another body is refused."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class StoredResponse:
    idempotency_key: str
    request_hash: str
    status_code: int
    body: Mapping[str, Any]
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class SaveResponse(WriteOp[StoredResponse]):
    """Store the response unless the key already has one; returns the stored one (the
    earlier, when two requests raced)."""

    response: StoredResponse


@runtime_checkable
class RequestLog(Protocol):
    async def find(self, tenant: TenantId, idempotency_key: str) -> StoredResponse | None: ...
