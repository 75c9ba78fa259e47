"""Session mode writes (both dialects): the mode check, the abuse firewall's cool-down (a
cool-down that starts counts itself in the customer's day, ``COOLDOWN_BUCKET``, which
``auto_block_after`` reads) and the fallback counter the tenant's handoff rule reads.

Each change of mode is one conditional ``UPDATE`` of the session row naming the mode it
leaves, so two writers racing for one session are ordered by the row's lock on
PostgreSQL (the second re-checks the mode on the row the first committed) and by the
serial writes of SQLite. The events name the session's trace (``Correlation(tenant,
trace, session_id)``).
"""

from typing import Any

from acf.adapters.sql.customer_rates import bump
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import EXECUTORS, executes, require_tenant
from acf.adapters.sql.session_rows import require_session
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_id, new_trace_id
from acf.ports.firewall import COOLDOWN_BUCKET, DAY_MS
from acf.ports.outbox import EnqueueReply
from acf.ports.session_modes import CheckMode, CountFallback, EndCooldown, StartCooldown

NOTICE_TURN_PREFIX = "operator-"
"""The turn id prefix of a notice no turn wrote (``acf.service.continuity.NOTICE_PREFIX``)."""
COOLDOWN_REASON_PREFIX = "abuse:"
"""A cool-down's ``mode_reason``: the prefix, then the detector that started it."""


def queue_notice(conn: SqlConnection, tenant: str, session_id: str, text: str, at_ms: int) -> int:
    """Queue a system notice to the customer: the outbox row ``EnqueueReply`` inserts, under
    a turn id of its own (``operator-…``), payload ``{"text", "author": "system"}``."""
    op = EnqueueReply(
        session_id, f"{NOTICE_TURN_PREFIX}{new_id()}", 0, {"text": text, "author": "system"}, at_ms
    )
    return int(EXECUTORS[EnqueueReply](conn, tenant, op))


def _event(
    conn: SqlConnection,
    kind: EventKind,
    tenant: str,
    session_id: str,
    trace_id: str,
    at_ms: int,
    data: dict[str, Any],
) -> None:
    insert_event(conn, FabricEvent(kind, at_ms, Correlation(tenant, trace_id, session_id), data))


@executes(CheckMode)
def _check(conn: SqlConnection, tenant: str, op: CheckMode) -> None:
    row = conn.execute(
        "SELECT mode FROM sessions WHERE tenant = ? AND session_id = ?",
        (tenant, op.session_id),
    ).fetchone()
    if row is None:
        raise Conflict(f"no session {op.session_id}")
    if row[0] != op.mode.value:
        raise Conflict("mode")


@executes(StartCooldown)
def _start_cooldown(conn: SqlConnection, tenant: str, op: StartCooldown) -> bool:
    require_tenant(tenant, op.tenant)
    entered = conn.execute(
        "UPDATE sessions SET mode = 'cooldown', mode_reason = ?, mode_since_ms = ?, "
        "mode_until_ms = ?, updated_at_ms = ? "
        "WHERE tenant = ? AND session_id = ? AND mode = 'agent'",
        (
            f"{COOLDOWN_REASON_PREFIX}{op.detector}",
            op.at_ms,
            op.until_ms,
            op.at_ms,
            tenant,
            op.session_id,
        ),
    ).rowcount
    if not entered:  # a running cool-down lasts until the later end
        conn.execute(
            "UPDATE sessions SET mode_until_ms = ?, updated_at_ms = ? "
            "WHERE tenant = ? AND session_id = ? AND mode = 'cooldown' "
            "AND (mode_until_ms IS NULL OR mode_until_ms < ?)",
            (op.until_ms, op.at_ms, tenant, op.session_id, op.until_ms),
        )
    session = require_session(conn, tenant, op.session_id)
    suspected = {
        "detector": op.detector,
        "detail": op.detail,
        "customer": session.key.customer,
        "channel": session.key.channel.value,
    }
    _event(conn, EventKind.ABUSE_SUSPECTED, tenant, op.session_id, op.trace_id, op.at_ms, suspected)
    if not entered:
        return False
    # the customer's cool-downs today, counted only when one started (auto_block_after)
    day = op.at_ms - op.at_ms % DAY_MS
    bump(conn, tenant, session.key.channel, session.key.customer, COOLDOWN_BUCKET, day)
    notice = None
    if op.notice is not None:
        notice = queue_notice(conn, tenant, op.session_id, op.notice, op.at_ms)
    started = {"until_ms": op.until_ms, "detector": op.detector, "notice_outbox_id": notice}
    _event(
        conn,
        EventKind.ABUSE_COOLDOWN_STARTED,
        tenant,
        op.session_id,
        op.trace_id,
        op.at_ms,
        started,
    )
    return True


@executes(EndCooldown)
def _end_cooldown(conn: SqlConnection, tenant: str, op: EndCooldown) -> bool:
    require_tenant(tenant, op.tenant)
    session = require_session(conn, tenant, op.session_id)
    cur = conn.execute(
        "UPDATE sessions SET mode = 'agent', mode_reason = NULL, mode_since_ms = ?, "
        "mode_until_ms = NULL, updated_at_ms = ? "
        "WHERE tenant = ? AND session_id = ? AND mode = 'cooldown' "
        "AND (? OR mode_until_ms IS NULL OR mode_until_ms <= ?)",
        (op.at_ms, op.at_ms, tenant, op.session_id, op.force, op.at_ms),
    )
    if cur.rowcount != 1:
        return False
    data = {
        "reason": session.mode_reason,
        "since_ms": session.mode_since_ms,
        "until_ms": session.mode_until_ms,
        "forced": op.force,
        "by": op.by,
    }
    trace = session.pending_trace_id or new_trace_id()
    _event(conn, EventKind.ABUSE_COOLDOWN_ENDED, tenant, op.session_id, trace, op.at_ms, data)
    return True


@executes(CountFallback)
def _count_fallback(conn: SqlConnection, tenant: str, op: CountFallback) -> int:
    row = conn.execute(
        "UPDATE sessions SET fallbacks = fallbacks + 1, updated_at_ms = ? "
        "WHERE tenant = ? AND session_id = ? RETURNING fallbacks",
        (op.at_ms, tenant, op.session_id),
    ).fetchone()
    if row is None:
        raise Conflict(f"no session {op.session_id}")
    return int(row[0])
