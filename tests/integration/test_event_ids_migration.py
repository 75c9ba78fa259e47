"""Revision 0008 on SQLite: ``events`` rebuilt with AUTOINCREMENT, rows and indexes kept,
and back (the PostgreSQL round trip, where it changes nothing, is in test_migrations)."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from acf.adapters.sql import migrate

INDEXES = {"ix_events_tenant", "ix_events_session"}


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path)) as db:
        yield db


def _insert(db: sqlite3.Connection, at_ms: int) -> int:
    cur = db.execute(
        "INSERT INTO events (tenant, kind, at_ms, trace_id, data) "
        "VALUES ('t', 'turn.started', ?, 'x', '{}') RETURNING event_id",
        (at_ms,),
    )
    (event_id,) = cur.fetchone()
    db.commit()
    return int(event_id)


def _table_sql(db: sqlite3.Connection) -> str:
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
    return str(sql)


def _indexes(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
    return {name for (name,) in rows}


def _rows(db: sqlite3.Connection) -> list[tuple[int, int]]:
    return list(db.execute("SELECT event_id, at_ms FROM events ORDER BY event_id"))


def test_events_get_autoincrement_with_their_rows_and_lose_it_on_downgrade(tmp_path: Path) -> None:
    path = tmp_path / "acf.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, "0007")
    with _open(path) as db:
        kept = [(_insert(db, 1), 1), (_insert(db, 2), 2)]
        assert "AUTOINCREMENT" not in _table_sql(db)

    migrate.upgrade(url, "0008")
    with _open(path) as db:
        assert "AUTOINCREMENT" in _table_sql(db)
        assert _rows(db) == kept and _indexes(db) == INDEXES
        newest = _insert(db, 3)
        db.execute("DELETE FROM events WHERE event_id = ?", (newest,))
        db.commit()
        assert _insert(db, 4) > newest  # the deleted id is not given again

    migrate.downgrade(url, "0007")
    with _open(path) as db:
        assert "AUTOINCREMENT" not in _table_sql(db)
        assert [at for _, at in _rows(db)] == [1, 2, 4] and _indexes(db) == INDEXES
    migrate.upgrade(url)
    with _open(path) as db:
        assert "AUTOINCREMENT" in _table_sql(db)
