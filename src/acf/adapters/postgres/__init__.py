"""The distributed adapter: PostgreSQL, the single authority (DESIGN §10). Its driver and
pool are the ``postgres`` extra (``pip install 'acf[postgres]'``)."""

from acf.extras import missing_extra

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:
    raise missing_extra("postgres", "The PostgreSQL store (distributed mode)") from exc

from acf.adapters.postgres.database import PgDatabase
from acf.adapters.postgres.store import PgStore, open_pg_store

__all__ = ["PgDatabase", "PgStore", "open_pg_store"]
