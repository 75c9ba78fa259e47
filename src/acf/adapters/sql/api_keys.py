"""API keys (both dialects): stored as SHA-256 digests, looked up across tenants."""

from typing import Any

from acf.adapters.sql.database import SCANNER, Database, SqlConnection
from acf.domain.errors import InvalidValue
from acf.domain.ids import TenantId, new_id
from acf.ports.api_keys import KEY_SCOPES, ApiKeyRecord, hash_key

_COLUMNS = "tenant, key_id, name, created_at_ms, revoked_at_ms, scope"


def _record(r: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(r[0], r[1], r[2], r[3], r[4], r[5])


class SqlApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, tenant: TenantId, name: str, key: str, at_ms: int, scope: str = "api"
    ) -> ApiKeyRecord:
        if scope not in KEY_SCOPES:
            raise InvalidValue(f"scope must be one of {', '.join(KEY_SCOPES)}, not {scope!r}")
        record = ApiKeyRecord(tenant, new_id(), name, at_ms, scope=scope)
        await self._db.write(
            tenant,
            lambda conn: conn.execute(
                "INSERT INTO api_keys (tenant, key_id, key_hash, name, created_at_ms, scope) "
                "VALUES (?,?,?,?,?,?)",
                (tenant, record.key_id, hash_key(key), name, at_ms, scope),
            ),
        )
        return record

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        """The key's record; the lookup crosses tenants (the key says whose it is)."""
        digest = hash_key(key)

        def find(conn: SqlConnection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at_ms IS NULL",
                (digest,),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._db.read(SCANNER, find)

    async def list_keys(self, tenant: TenantId) -> list[ApiKeyRecord]:
        rows = await self._db.read(
            tenant,
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = ? ORDER BY created_at_ms",
                (tenant,),
            ).fetchall(),
        )
        return [_record(r) for r in rows]

    async def revoke(self, tenant: TenantId, key_id: str, at_ms: int) -> bool:
        changed = await self._db.write(
            tenant,
            lambda conn: (
                conn.execute(
                    "UPDATE api_keys SET revoked_at_ms = ? WHERE tenant = ? AND key_id = ? "
                    "AND revoked_at_ms IS NULL",
                    (at_ms, tenant, key_id),
                ).rowcount
            ),
        )
        return changed == 1
