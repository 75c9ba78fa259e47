"""Rows in the service's SQLite file, read beside it (WAL lets a reader in): what a webhook
stored, whatever customer or session it landed in."""

import sqlite3
from pathlib import Path

from acf.bootstrap.embedded import database_path


def message_count(data_dir: Path) -> int:
    raw = sqlite3.connect(database_path(data_dir))
    try:
        (count,) = raw.execute("SELECT count(*) FROM messages").fetchone()
    finally:
        raw.close()
    return int(count)
