"""SQLite recovery scanner: where was work left, across tenants (ids only)."""

import sqlite3

from acf.adapters.sqlite.database import SqliteDatabase
from acf.ports.recovery import SessionWork

_SCAN = """
SELECT tenant, session_id, MAX(turns), MAX(deliveries) FROM (
  SELECT tenant, session_id, 1 AS turns, 0 AS deliveries FROM sessions
   WHERE last_seq > consumed_seq
  UNION ALL
  SELECT tenant, session_id, 1, 0 FROM turns WHERE phase IN ('accumulating', 'running')
  UNION ALL
  SELECT tenant, session_id, 0, 1 FROM outbox WHERE status = 'pending'
) GROUP BY tenant, session_id ORDER BY tenant, session_id LIMIT ?
"""


class SqliteRecoveryScanner:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def sessions_with_work(self, limit: int = 1000) -> list[SessionWork]:
        def run(conn: sqlite3.Connection) -> list[SessionWork]:
            return [
                SessionWork(r[0], r[1], bool(r[2]), bool(r[3]))
                for r in conn.execute(_SCAN, (limit,))
            ]

        return await self._db.read(run)
