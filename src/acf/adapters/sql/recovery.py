"""Recovery scanner: where work was left, across tenants (ids only)."""

from typing import Any

from acf.adapters.sql.database import SCANNER, Database, SqlConnection
from acf.ports.lease import delivery_lease_id
from acf.ports.recovery import SessionWork

# A lease (the session's, or its relay's) live at acf_now(?): someone is on that work.
_HELD = """EXISTS (SELECT 1 FROM session_leases l WHERE l.tenant = {t}.tenant
   AND l.session_id = {t}.session_id{suffix} AND l.expires_at_ms > acf_now(?))"""


def _scan(unheld: bool) -> str:
    def free(table: str, suffix: str = "") -> str:
        return " AND NOT " + _HELD.format(t=table, suffix=suffix) if unheld else ""

    relay = " || '" + delivery_lease_id("") + "'"
    return f"""
SELECT tenant, session_id, MAX(turns), MAX(deliveries) FROM (
  SELECT tenant, session_id, 1 AS turns, 0 AS deliveries FROM sessions
   WHERE last_seq > consumed_seq{free("sessions")}
  UNION ALL
  SELECT tenant, session_id, 1, 0 FROM turns
   WHERE phase IN ('accumulating', 'running'){free("turns")}
  UNION ALL
  SELECT tenant, session_id, 1, 0 FROM dead_letters
   WHERE replay_requested_at_ms IS NOT NULL AND replayed_at_ms IS NULL{free("dead_letters")}
  UNION ALL
  SELECT tenant, session_id, 0, 1 FROM outbox WHERE status = 'pending'{free("outbox", relay)}
) AS work GROUP BY tenant, session_id ORDER BY tenant, session_id LIMIT ?"""


_SCAN_ALL = _scan(unheld=False)
_SCAN_UNHELD = _scan(unheld=True)


class SqlRecoveryScanner:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def sessions_with_work(
        self, limit: int = 1000, unheld_at_ms: int | None = None
    ) -> list[SessionWork]:
        statement = _SCAN_ALL if unheld_at_ms is None else _SCAN_UNHELD
        args: tuple[Any, ...] = (limit,) if unheld_at_ms is None else (*[unheld_at_ms] * 4, limit)

        def run(conn: SqlConnection) -> list[SessionWork]:
            return [
                SessionWork(r[0], r[1], bool(r[2]), bool(r[3]))
                for r in conn.execute(statement, args)
            ]

        return await self._db.read(SCANNER, run)
