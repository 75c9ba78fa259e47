"""The embedded adapter: one SQLite file in WAL mode, one writer thread with group commit."""

from acf.adapters.sqlite.database import DatabaseInUse, Durability, SqliteDatabase
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store

__all__ = ["DatabaseInUse", "Durability", "SqliteDatabase", "SqliteStore", "open_sqlite_store"]
