"""Responses of requests sent with an ``Idempotency-Key``: the same key and body get the
same response again; the same key with another body is refused.

A key is reserved (with the request's hash) in the same unit of work as what the request
does, so two racing requests with one key and different bodies cannot both take effect.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class StoredResponse:
    idempotency_key: str
    request_hash: str
    status_code: int | None
    """None while the request that reserved the key has not stored its response yet."""
    body: Mapping[str, Any] | None
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class ReserveRequest(WriteOp[None]):
    """Guard and write: reserve ``idempotency_key`` for ``request_hash``. Raises
    ``Conflict`` when the key is held for another hash (then nothing of the unit is done);
    a key already held for the same hash passes."""

    idempotency_key: str
    request_hash: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class SaveResponse(WriteOp[StoredResponse]):
    """Store the response of a reserved key unless one is stored; returns the stored one
    (the earlier, when two requests with the same body raced)."""

    idempotency_key: str
    status_code: int
    body: Mapping[str, Any]


@runtime_checkable
class RequestLog(Protocol):
    async def find(self, tenant: TenantId, idempotency_key: str) -> StoredResponse | None: ...
