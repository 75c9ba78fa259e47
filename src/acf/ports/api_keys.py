"""API keys: each tenant's credentials for the HTTP API, stored as hashes only."""

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import TenantId

KEY_PREFIX = "acf_"
KEY_SCOPES = ("api", "admin", "operator")


def new_api_key() -> str:
    """A fresh key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Keys are long random strings, so a plain SHA-256 is enough (no salt, no stretching):
    it cannot be guessed back, and the lookup stays one indexed read."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    tenant: TenantId
    key_id: str
    name: str
    created_at_ms: int
    revoked_at_ms: int | None = None
    scope: str = "api"
    """What the key may do: ``"api"`` (the tenant's API), ``"admin"`` (also the
    configuration lifecycle), ``"operator"`` (the inbox, handoffs, the block list, and the
    API's reads)."""

    @property
    def active(self) -> bool:
        return self.revoked_at_ms is None


@runtime_checkable
class ApiKeys(Protocol):
    """Guarantees: the key itself is never stored; a revoked key authenticates nothing."""

    async def create(
        self, tenant: TenantId, name: str, key: str, at_ms: int, scope: str = "api"
    ) -> ApiKeyRecord:
        """Store the key's hash; ``scope`` is one of ``KEY_SCOPES`` (else ``InvalidValue``)."""
        ...

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        """The active key's record, or None for an unknown or revoked key."""
        ...

    async def list_keys(self, tenant: TenantId) -> list[ApiKeyRecord]: ...

    async def revoke(self, tenant: TenantId, key_id: str, at_ms: int) -> bool:
        """True if the tenant had that active key."""
        ...
