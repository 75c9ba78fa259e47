"""Recovery scanner: where work was left, which sessions may close for idleness, and which
tenants the mode watch looks at, across tenants (ids only)."""

from typing import Any

from acf.adapters.sql.database import SCANNER, Database, SqlConnection
from acf.domain.channels import Channel
from acf.domain.ids import SessionId, TenantId
from acf.ports.lease import delivery_lease_id
from acf.ports.recovery import EndedCooldown, IdleSession, ModeWork, SessionWork

# A lease (the session's, or its relay's) live at acf_now(?): someone is on that work.
_HELD = """EXISTS (SELECT 1 FROM session_leases l WHERE l.tenant = {t}.tenant
   AND l.session_id = {t}.session_id{suffix} AND l.expires_at_ms > acf_now(?))"""


# Unconsumed messages are turn work only in a mode a driver acts on: the agent answers them,
# a DROP turn consumes a blocked customer's, and a cool-down that has ended (by the store's
# clock) releases its held messages as one turn. In human mode and a running cool-down they
# wait (a person answers; the mode watch wakes the session when the cool-down ends). A live
# turn is listed in every mode, so a driver stands it down.
# Without a time (the argument NULL) every cool-down is listed: its driver looks and idles.
_ANSWERABLE = """(mode IN ('agent', 'blocked') OR (mode = 'cooldown'
       AND mode_until_ms <= COALESCE(acf_now(?), mode_until_ms)))"""


def _scan(unheld: bool) -> str:
    def free(table: str, suffix: str = "") -> str:
        return " AND NOT " + _HELD.format(t=table, suffix=suffix) if unheld else ""

    relay = " || '" + delivery_lease_id("") + "'"
    return f"""
SELECT tenant, session_id, MAX(turns), MAX(deliveries) FROM (
  SELECT tenant, session_id, 1 AS turns, 0 AS deliveries FROM sessions
   WHERE last_seq > consumed_seq AND {_ANSWERABLE}{free("sessions")}
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

# Open sessions by activity (the partial index ix_sessions_open_idle), each checked for
# work left by the indexes the recovery scan uses. Only sessions in agent mode: one handed to
# a person, held in a cool-down or blocked never closes for idleness (its mode ends first).
_IDLE = """
SELECT s.tenant, s.session_id, s.agent, s.channel, s.updated_at_ms FROM sessions s
 WHERE s.status = 'open' AND s.updated_at_ms <= ?{after} AND s.last_seq = s.consumed_seq
   AND s.mode = 'agent'
   AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.tenant = s.tenant
       AND t.session_id = s.session_id AND t.phase IN ('accumulating', 'running'))
   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.tenant = s.tenant
       AND o.session_id = s.session_id AND o.status = 'pending')
   AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.tenant = s.tenant
       AND d.session_id = s.session_id AND d.replay_requested_at_ms IS NOT NULL
       AND d.replayed_at_ms IS NULL)
 ORDER BY s.updated_at_ms, s.tenant, s.session_id LIMIT ?"""
_IDLE_FIRST = _IDLE.format(after="")
_IDLE_AFTER = _IDLE.format(after=" AND (s.updated_at_ms, s.tenant, s.session_id) > (?, ?, ?)")

# Each branch reads a partial index: ux_handoffs_open, ix_sessions_mode, ux_customer_blocks_active.
_MODE_WORK = """
SELECT tenant, MAX(handoffs), MAX(cooldowns), MAX(blocks) FROM (
  SELECT DISTINCT tenant, 1 AS handoffs, 0 AS cooldowns, 0 AS blocks FROM handoffs
   WHERE resolved_at_ms IS NULL
  UNION ALL
  SELECT DISTINCT tenant, 0, 1, 0 FROM sessions
   WHERE mode <> 'agent' AND mode = 'cooldown' AND status = 'open' AND mode_until_ms <= ?
  UNION ALL
  SELECT DISTINCT tenant, 0, 0, 1 FROM customer_blocks
   WHERE lifted_at_ms IS NULL AND expires_at_ms <= ?
) AS work GROUP BY tenant ORDER BY tenant"""

# The tenant's ended cool-downs, earliest first (the partial index ix_sessions_mode).
_ENDED_COOLDOWNS = """
SELECT session_id, mode_until_ms, last_seq > consumed_seq FROM sessions
 WHERE tenant = ? AND mode <> 'agent' AND mode = 'cooldown' AND status = 'open'
   AND mode_until_ms <= ?
 ORDER BY mode_until_ms, session_id LIMIT ?"""


class SqlRecoveryScanner:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def sessions_with_work(
        self, limit: int = 1000, unheld_at_ms: int | None = None, now_ms: int | None = None
    ) -> list[SessionWork]:
        statement = _SCAN_ALL if unheld_at_ms is None else _SCAN_UNHELD
        # The time a cool-down's end is compared with (acf_now: the store's clock), then
        # the unheld scan's four lease checks.
        now = unheld_at_ms if now_ms is None else now_ms
        args: tuple[Any, ...] = (
            (now, limit) if unheld_at_ms is None else (now, *[unheld_at_ms] * 4, limit)
        )

        def run(conn: SqlConnection) -> list[SessionWork]:
            return [
                SessionWork(r[0], r[1], bool(r[2]), bool(r[3]))
                for r in conn.execute(statement, args)
            ]

        return await self._db.read(SCANNER, run)

    async def idle_sessions(
        self,
        idle_since_before_ms: int,
        limit: int = 1000,
        after: tuple[int, TenantId, SessionId] | None = None,
    ) -> list[IdleSession]:
        statement = _IDLE_FIRST if after is None else _IDLE_AFTER
        args: tuple[Any, ...] = (idle_since_before_ms, *(after or ()), limit)

        def run(conn: SqlConnection) -> list[IdleSession]:
            return [
                IdleSession(r[0], r[1], r[2], Channel(r[3]), int(r[4]))
                for r in conn.execute(statement, args)
            ]

        return await self._db.read(SCANNER, run)

    async def mode_work(self, now_ms: int) -> list[ModeWork]:
        def run(conn: SqlConnection) -> list[ModeWork]:
            return [
                ModeWork(r[0], bool(r[1]), bool(r[2]), bool(r[3]))
                for r in conn.execute(_MODE_WORK, (now_ms, now_ms))
            ]

        return await self._db.read(SCANNER, run)

    async def ended_cooldowns(
        self, tenant: TenantId, now_ms: int, limit: int = 500
    ) -> list[EndedCooldown]:
        def run(conn: SqlConnection) -> list[EndedCooldown]:
            return [
                EndedCooldown(str(r[0]), int(r[1]), bool(r[2]))
                for r in conn.execute(_ENDED_COOLDOWNS, (tenant, now_ms, limit))
            ]

        return await self._db.read(tenant, run)
