"""Rows of the configuration version store (both dialects): the columns, their mapping to
domain values, and the plain reads the ops and the port share."""

from typing import Any

from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.registry import loads
from acf.domain.config_versions import ApplyMode, ConfigPointer, ConfigVersion, VersionStatus

VERSION_COLUMNS = (
    "tenant, number, content_hash, source, resolved, provenance, author, message, git_commit, "
    "apply, status, rolled_back, gates, created_at_ms, updated_at_ms"
)
POINTER_COLUMNS = (
    "tenant, live, previous_live, canary, canary_share, canary_started_at_ms, "
    "canary_step_at_ms, updated_at_ms"
)


def version_of(row: tuple[Any, ...]) -> ConfigVersion:
    return ConfigVersion(
        tenant=row[0],
        number=row[1],
        content_hash=row[2],
        source=loads(row[3]),
        resolved=loads(row[4]),
        provenance=loads(row[5]),
        author=row[6],
        message=row[7],
        git_commit=row[8],
        apply=ApplyMode(row[9]),
        status=VersionStatus(row[10]),
        rolled_back=bool(row[11]),
        gates=loads(row[12]),
        created_at_ms=row[13],
        updated_at_ms=row[14],
    )


def pointer_of(row: tuple[Any, ...]) -> ConfigPointer:
    return ConfigPointer(*row)


def for_update(conn: SqlConnection) -> str:
    return " FOR UPDATE" if conn.dialect.name == "postgresql" else ""


def fetch_version(
    conn: SqlConnection, tenant: str, number: int, lock: bool = False
) -> ConfigVersion | None:
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant = ? AND number = ?"
        + (for_update(conn) if lock else ""),
        (tenant, number),
    ).fetchone()
    return None if row is None else version_of(row)


def fetch_pointer(conn: SqlConnection, tenant: str) -> ConfigPointer | None:
    row = conn.execute(
        f"SELECT {POINTER_COLUMNS} FROM config_pointers WHERE tenant = ?", (tenant,)
    ).fetchone()
    return None if row is None else pointer_of(row)


def fetch_by_hash(conn: SqlConnection, tenant: str, content_hash: str) -> ConfigVersion | None:
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant = ? AND content_hash = ?",
        (tenant, content_hash),
    ).fetchone()
    return None if row is None else version_of(row)
