"""The distributed adapter: PostgreSQL, the single authority (DESIGN §10)."""

from acf.adapters.postgres.database import PgDatabase
from acf.adapters.postgres.store import PgStore, open_pg_store

__all__ = ["PgDatabase", "PgStore", "open_pg_store"]
