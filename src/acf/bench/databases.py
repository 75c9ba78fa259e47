"""The PostgreSQL side of the distributed benchmark: temporary databases on the server of an
admin URL, and the rows acf stored in one.
"""

import contextlib
import uuid
from collections.abc import Iterator


def libpq(url: str) -> str:
    """A libpq DSN from a SQLAlchemy-style URL (``postgresql+psycopg://`` accepted)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def temporary_databases(admin_url: str, count: int) -> Iterator[list[str]]:
    """``count`` new ``acf_bench_<hex>`` databases (their URLs), dropped afterwards."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin = libpq(admin_url)
    names: list[str] = []
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            for _ in range(count):
                name = f"acf_bench_{uuid.uuid4().hex[:12]}"
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                names.append(name)
        base = make_url(admin)
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        if names:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                for name in names:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )


def stored_rows(database_url: str) -> dict[str, int]:
    """Rows in acf's ``messages``, ``turns`` and ``outbox`` tables."""
    import psycopg

    out: dict[str, int] = {}
    with psycopg.connect(libpq(database_url), connect_timeout=5) as conn:
        for table in ("messages", "turns", "outbox"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            out[table] = int(row[0]) if row else -1
    return out


def analyze(database_url: str) -> None:
    """``ANALYZE`` the database: the planner's statistics, as autovacuum keeps them."""
    import psycopg

    with psycopg.connect(libpq(database_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute("ANALYZE")
