"""Configuration version store (both dialects): the port's reads. The write ops are in
``config_version_ops`` (imported here, so whoever uses the store has their executors)."""

import math

from acf.adapters.sql import config_version_ops  # noqa: F401  (registers the executors)
from acf.adapters.sql.config_version_rows import (
    VERSION_COLUMNS,
    fetch_by_hash,
    fetch_pointer,
    fetch_version,
    version_of,
)
from acf.adapters.sql.database import Database, SqlConnection
from acf.domain.config_versions import ArmStats, ConfigPointer, ConfigVersion, version_label
from acf.domain.ids import SessionId, TenantId

_COUNTED = "('committed', 'failed')"
"""The outcomes a canary counts: a turn that answered (superseded ones did not)."""


def arm_stats_of(conn: SqlConnection, tenant: str, number: int, since_ms: int) -> ArmStats:
    """Counts of the version's counted turns since ``since_ms``, and their p95 duration
    (the nearest-rank percentile)."""
    where = (
        "FROM turn_records WHERE tenant = ? AND config_version = ? AND created_at_ms >= ? "
        f"AND outcome IN {_COUNTED}"
    )
    args = (tenant, version_label(number), since_ms)
    turns, failed, fallback, handoff, timed = conn.execute(
        "SELECT COUNT(*), "
        "COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN fallback THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN handoff THEN 1 ELSE 0 END), 0), "
        f"COUNT(duration_ms) {where}",
        args,
    ).fetchone()
    p95: int | None = None
    if timed:
        rank = math.ceil(0.95 * int(timed)) - 1
        row = conn.execute(
            f"SELECT duration_ms {where} AND duration_ms IS NOT NULL "
            "ORDER BY duration_ms LIMIT 1 OFFSET ?",
            (*args, rank),
        ).fetchone()
        p95 = None if row is None else int(row[0])
    return ArmStats(int(turns), int(failed), int(fallback), int(handoff), p95)


class SqlConfigVersions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: TenantId, number: int) -> ConfigVersion | None:
        return await self._db.read(tenant, lambda conn: fetch_version(conn, tenant, number))

    async def by_hash(self, tenant: TenantId, content_hash: str) -> ConfigVersion | None:
        return await self._db.read(tenant, lambda conn: fetch_by_hash(conn, tenant, content_hash))

    async def history(self, tenant: TenantId, limit: int = 50) -> list[ConfigVersion]:
        return await self._db.read(
            tenant,
            lambda conn: [
                version_of(r)
                for r in conn.execute(
                    f"SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant = ? "
                    "ORDER BY number DESC LIMIT ?",
                    (tenant, limit),
                )
            ],
        )

    async def pointer(self, tenant: TenantId) -> ConfigPointer | None:
        return await self._db.read(tenant, lambda conn: fetch_pointer(conn, tenant))

    async def arm_stats(self, tenant: TenantId, number: int, since_ms: int) -> ArmStats:
        return await self._db.read(
            tenant, lambda conn: arm_stats_of(conn, tenant, number, since_ms)
        )

    async def open_sessions_on(
        self, tenant: TenantId, number: int, limit: int = 1000
    ) -> list[SessionId]:
        return await self._db.read(
            tenant,
            lambda conn: [
                str(r[0])
                for r in conn.execute(
                    "SELECT session_id FROM sessions WHERE tenant = ? AND config_version = ? "
                    "AND status = 'open' ORDER BY created_at_ms, session_id LIMIT ?",
                    (tenant, number, limit),
                )
            ],
        )
