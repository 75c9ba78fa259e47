"""The handoff's writes (both dialects): each one guarded in its own statement and audited
with who did it (``by``) in the same transaction.

A mode change is one conditional ``UPDATE`` of the session row: on PostgreSQL a concurrent
writer of the same row waits for this one and then re-checks the condition on the row as
committed, so of two racing handoffs (or claims) exactly one changes anything; on SQLite
write transactions are serial. A claim is live until ``claim_expires_at_ms``, compared with
the store's clock (``acf_now``), as leases are.
"""

from typing import Any, NoReturn

from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.handoff_rows import (
    HANDOFF_COLUMNS,
    audit,
    for_update,
    handoff_of,
    open_handoff,
    session_mode,
)
from acf.adapters.sql.registry import dumps, executes, require_tenant
from acf.adapters.sql.session_modes import queue_notice
from acf.adapters.sql.sessions import fetch_session
from acf.domain import state as state_contract
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_id, new_trace_id
from acf.domain.modes import SessionMode
from acf.ports.handoffs import (
    AddNote,
    CheckClaim,
    ClaimHandoff,
    EnterHuman,
    Handoff,
    MarkOperatorReply,
    MarkSlaBreached,
    MarkStillWaiting,
    Note,
    Operator,
    ReleaseClaim,
    ResumeAgent,
)
from acf.ports.session_store import SessionStatus

# Where a handoff may start, and where a resume may start from.
_HANDS_OFF = "('agent','cooldown')"
_RESUMES = "('human','cooldown')"
_LIVE_CLAIM = "claimed_by IS NOT NULL AND claim_expires_at_ms > acf_now(?)"
# The SLA and the "still waiting" notice run only while a person is to answer: not while
# the customer is blocked (the handoff waits for the lift).
_IN_HUMAN_MODE = (
    "EXISTS (SELECT 1 FROM sessions s WHERE s.tenant = handoffs.tenant "
    "AND s.session_id = handoffs.session_id AND s.mode = 'human')"
)


def _by(by: Operator | None) -> dict[str, str] | None:
    return None if by is None else by.as_payload()


def _no_session(session_id: str) -> NoReturn:
    raise Conflict(f"no session {session_id}")


@executes(EnterHuman)
def _enter_human(conn: SqlConnection, tenant: str, op: EnterHuman) -> Handoff | None:
    require_tenant(tenant, op.tenant)
    changed = conn.execute(
        "UPDATE sessions SET mode = 'human', mode_reason = ?, mode_since_ms = ?, "
        "mode_until_ms = NULL, updated_at_ms = ? WHERE tenant = ? AND session_id = ? "
        f"AND status = 'open' AND mode IN {_HANDS_OFF}",
        (op.reason, op.at_ms, op.at_ms, tenant, op.session_id),
    ).rowcount
    if changed != 1:
        found = session_mode(conn, tenant, op.session_id)
        if found is None:
            _no_session(op.session_id)
        status, mode = found
        if status != SessionStatus.OPEN.value:
            raise Conflict("closed")
        if mode == SessionMode.BLOCKED.value:
            raise Conflict("blocked")
        return None  # already in human mode: nothing more (no second notice)
    # The session was not in human mode: a handoff still open is a leftover (a block lifted
    # over it), closed here so that this one is the session's only open handoff.
    conn.execute(
        "UPDATE handoffs SET resolved_at_ms = ?, resolved_by = ? "
        "WHERE tenant = ? AND session_id = ? AND resolved_at_ms IS NULL",
        (op.at_ms, "system", tenant, op.session_id),
    )
    handoff = Handoff(
        tenant=tenant,
        handoff_id=new_id(),
        session_id=op.session_id,
        reason=op.reason,
        source=op.source,
        opened_by=None if op.by is None else op.by.key_id,
        opened_at_ms=op.at_ms,
    )
    conn.execute(
        "INSERT INTO handoffs (tenant, handoff_id, session_id, reason, source, opened_by, "
        "opened_at_ms) VALUES (?,?,?,?,?,?,?)",
        (
            tenant,
            handoff.handoff_id,
            handoff.session_id,
            handoff.reason,
            handoff.source.value,
            handoff.opened_by,
            handoff.opened_at_ms,
        ),
    )
    notice = None
    if op.notice:
        notice = queue_notice(conn, tenant, op.session_id, op.notice, op.at_ms)
    data = {
        "handoff_id": handoff.handoff_id,
        "reason": op.reason,
        "source": op.source.value,
        "by": _by(op.by),
        "notice_outbox_id": notice,
    }
    audit(conn, EventKind.SESSION_HANDED_OFF, tenant, op.session_id, op.trace_id, op.at_ms, data)
    return handoff


@executes(ResumeAgent)
def _resume(conn: SqlConnection, tenant: str, op: ResumeAgent) -> None:
    require_tenant(tenant, op.tenant)
    # The row locked first (PostgreSQL): its state is read, patched and written back.
    conn.execute(
        "SELECT 1 FROM sessions WHERE tenant = ? AND session_id = ?" + for_update(conn),
        (tenant, op.session_id),
    ).fetchone()
    session = fetch_session(conn, tenant, op.session_id)
    if session is None:
        _no_session(op.session_id)
    if session.status is not SessionStatus.OPEN:
        raise Conflict("closed")
    if session.mode not in (SessionMode.HUMAN, SessionMode.COOLDOWN):
        raise Conflict("not_human")
    handoff = open_handoff(conn, tenant, op.session_id, lock=True)
    if handoff is not None:
        holder = handoff.claimed_at(op.at_ms)
        if holder is not None and holder != op.by.key_id:
            raise Conflict("claimed")
    # Set even without a note: the agent learns a person had the conversation.
    handover = {"note": op.note, "by": op.by.as_payload(), "at_ms": op.at_ms}
    state = state_contract.apply_patch(session.state, {"meta": {"handover": handover}})
    changed = conn.execute(
        "UPDATE sessions SET mode = 'agent', mode_reason = NULL, mode_since_ms = ?, "
        # The fallback count starts again: the rule hands off after N fallbacks since the
        # agent last took the session over, not N since it opened.
        "mode_until_ms = NULL, fallbacks = 0, state = ?, state_version = state_version + 1, "
        "updated_at_ms = ? "
        f"WHERE tenant = ? AND session_id = ? AND mode IN {_RESUMES} AND state_version = ?",
        (op.at_ms, dumps(state), op.at_ms, tenant, op.session_id, session.state_version),
    ).rowcount
    if changed != 1:  # changed meanwhile (SQLite never gets here: writes are serial)
        raise Conflict("not_human")
    if handoff is not None:
        conn.execute(
            "UPDATE handoffs SET resolved_at_ms = ?, resolved_by = ?, resume_note = ? "
            "WHERE tenant = ? AND handoff_id = ?",
            (op.at_ms, op.by.key_id, op.note, tenant, handoff.handoff_id),
        )
    data = {
        "handoff_id": None if handoff is None else handoff.handoff_id,
        "from": session.mode.value,
        "by": op.by.as_payload(),
        "with_note": bool(op.note),
        "state_version": session.state_version + 1,
    }
    audit(conn, EventKind.SESSION_RESUMED, tenant, op.session_id, op.trace_id, op.at_ms, data)


@executes(ClaimHandoff)
def _claim(conn: SqlConnection, tenant: str, op: ClaimHandoff) -> Handoff:
    require_tenant(tenant, op.tenant)
    now = op.at_ms
    row = conn.execute(
        "UPDATE handoffs SET claimed_by = ?, claimed_by_name = ?, "
        # a renewal keeps when the claim was taken
        f"claimed_at_ms = CASE WHEN claimed_by = ? AND {_LIVE_CLAIM} THEN claimed_at_ms "
        "ELSE ? END, claim_expires_at_ms = acf_now(?) + ? "
        "WHERE tenant = ? AND session_id = ? AND resolved_at_ms IS NULL "
        "AND (claimed_by IS NULL OR claimed_by = ? OR claim_expires_at_ms <= acf_now(?)) "
        f"AND {_IN_HUMAN_MODE} RETURNING {HANDOFF_COLUMNS}",
        (
            op.by.key_id,
            op.by.name,
            op.by.key_id,
            now,
            now,
            now,
            op.ttl_ms,
            tenant,
            op.session_id,
            op.by.key_id,
            now,
        ),
    ).fetchone()
    if row is None:
        if open_handoff(conn, tenant, op.session_id) is None:
            raise Conflict("not_human")
        found = session_mode(conn, tenant, op.session_id)
        if found is None or found[1] != SessionMode.HUMAN.value:
            raise Conflict("not_human")
        raise Conflict("claimed")
    handoff = handoff_of(row)
    data = {
        "handoff_id": handoff.handoff_id,
        "by": op.by.as_payload(),
        "expires_at_ms": handoff.claim_expires_at_ms,
        "renewed": handoff.claimed_at_ms != now,
    }
    audit(conn, EventKind.HANDOFF_CLAIMED, tenant, op.session_id, op.trace_id, now, data)
    return handoff


@executes(CheckClaim)
def _check_claim(conn: SqlConnection, tenant: str, op: CheckClaim) -> str:
    require_tenant(tenant, op.tenant)
    # Locked (PostgreSQL) until the unit ends: a take-over of an expiring claim waits for it.
    handoff = open_handoff(conn, tenant, op.session_id, lock=True)
    found = session_mode(conn, tenant, op.session_id)
    if handoff is None or found is None or found[1] != SessionMode.HUMAN.value:
        raise Conflict("not_human")
    live = conn.execute(
        f"SELECT 1 FROM handoffs WHERE tenant = ? AND handoff_id = ? AND claimed_by = ? "
        f"AND {_LIVE_CLAIM}",
        (tenant, handoff.handoff_id, op.by.key_id, op.at_ms),
    ).fetchone()
    if live is None:
        raise Conflict("not_claimed")
    return handoff.handoff_id


@executes(ReleaseClaim)
def _release(conn: SqlConnection, tenant: str, op: ReleaseClaim) -> None:
    require_tenant(tenant, op.tenant)
    # The claimant's own claim, expired or not, as long as nobody took it over meanwhile.
    row = conn.execute(
        "UPDATE handoffs SET claimed_by = NULL, claimed_by_name = NULL, claimed_at_ms = NULL, "
        "claim_expires_at_ms = NULL WHERE tenant = ? AND session_id = ? "
        "AND resolved_at_ms IS NULL AND claimed_by = ? RETURNING handoff_id",
        (tenant, op.session_id, op.by.key_id),
    ).fetchone()
    if row is None:
        if open_handoff(conn, tenant, op.session_id) is None:
            raise Conflict("not_human")
        raise Conflict("not_claimed")
    handoff_id = str(row[0])
    note_id = None
    if op.note:
        note_id = new_id()
        _insert_note(conn, tenant, op.session_id, handoff_id, note_id, op.by, op.note, op.at_ms)
    data = {"handoff_id": handoff_id, "by": op.by.as_payload(), "note_id": note_id}
    audit(conn, EventKind.HANDOFF_RELEASED, tenant, op.session_id, op.trace_id, op.at_ms, data)


def _insert_note(
    conn: SqlConnection,
    tenant: str,
    session_id: str,
    handoff_id: str | None,
    note_id: str,
    by: Operator,
    text: str,
    at_ms: int,
) -> Note:
    note = Note(note_id, session_id, handoff_id, by.key_id, by.name, text, at_ms)
    conn.execute(
        "INSERT INTO operator_notes (tenant, note_id, session_id, handoff_id, author_key_id, "
        "author_name, text, created_at_ms) VALUES (?,?,?,?,?,?,?,?)",
        (tenant, note_id, session_id, handoff_id, by.key_id, by.name, text, at_ms),
    )
    return note


@executes(AddNote)
def _add_note(conn: SqlConnection, tenant: str, op: AddNote) -> Note:
    require_tenant(tenant, op.tenant)
    if session_mode(conn, tenant, op.session_id) is None:
        _no_session(op.session_id)
    handoff = open_handoff(conn, tenant, op.session_id)
    handoff_id = None if handoff is None else handoff.handoff_id
    note = _insert_note(
        conn, tenant, op.session_id, handoff_id, op.note_id, op.by, op.text, op.at_ms
    )
    # The note's text stays in the notes: the audit trail says who wrote one, and when.
    data = {"note_id": op.note_id, "handoff_id": handoff_id, "by": op.by.as_payload()}
    audit(conn, EventKind.OPERATOR_NOTE_ADDED, tenant, op.session_id, op.trace_id, op.at_ms, data)
    return note


@executes(MarkOperatorReply)
def _mark_reply(conn: SqlConnection, tenant: str, op: MarkOperatorReply) -> None:
    require_tenant(tenant, op.tenant)
    row = conn.execute(
        # Only ever extended (no ``claim_until_ms``: the comparison is NULL, nothing changes).
        "UPDATE handoffs SET last_operator_reply_at_ms = ?, claim_expires_at_ms = CASE "
        "WHEN claimed_by IS NOT NULL AND claim_expires_at_ms < ? THEN ? "
        "ELSE claim_expires_at_ms END "
        "WHERE tenant = ? AND handoff_id = ? AND resolved_at_ms IS NULL RETURNING session_id",
        (op.at_ms, op.claim_until_ms, op.claim_until_ms, tenant, op.handoff_id),
    ).fetchone()
    if row is None:
        raise Conflict("not_human")
    if op.turn_id is None:
        return
    outbox_ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT outbox_id FROM outbox WHERE tenant = ? AND turn_id = ? ORDER BY outbox_id",
            (tenant, op.turn_id),
        )
    ]
    data: dict[str, Any] = {
        "handoff_id": op.handoff_id,
        "by": _by(op.by),
        "turn_id": op.turn_id,
        "outbox_ids": outbox_ids,
    }
    group = conn.execute(
        "SELECT group_id FROM turns WHERE tenant = ? AND turn_id = ?", (tenant, op.turn_id)
    ).fetchone()
    correlation = Correlation(
        tenant,
        op.trace_id or new_trace_id(),
        str(row[0]),
        turn_id=op.turn_id,
        group_id=None if group is None else str(group[0]),
    )
    insert_event(conn, FabricEvent(EventKind.OPERATOR_REPLIED, op.at_ms, correlation, data))


@executes(MarkSlaBreached)
def _sla_breached(conn: SqlConnection, tenant: str, op: MarkSlaBreached) -> bool:
    require_tenant(tenant, op.tenant)
    row = conn.execute(
        "UPDATE handoffs SET sla_breached_at_ms = ? WHERE tenant = ? AND handoff_id = ? "
        f"AND resolved_at_ms IS NULL AND sla_breached_at_ms IS NULL AND {_IN_HUMAN_MODE} "
        "RETURNING session_id",
        (op.at_ms, tenant, op.handoff_id),
    ).fetchone()
    if row is None:
        return False
    data = {"handoff_id": op.handoff_id, "waited_ms": op.waited_ms}
    audit(conn, EventKind.HANDOFF_SLA_BREACHED, tenant, str(row[0]), new_trace_id(), op.at_ms, data)
    return True


@executes(MarkStillWaiting)
def _still_waiting(conn: SqlConnection, tenant: str, op: MarkStillWaiting) -> bool:
    require_tenant(tenant, op.tenant)
    row = conn.execute(
        "UPDATE handoffs SET still_waiting_at_ms = ? WHERE tenant = ? AND handoff_id = ? "
        "AND resolved_at_ms IS NULL AND still_waiting_at_ms IS NULL "
        f"AND NOT ({_LIVE_CLAIM}) AND {_IN_HUMAN_MODE} RETURNING session_id",
        (op.at_ms, tenant, op.handoff_id, op.at_ms),
    ).fetchone()
    if row is None:
        return False
    session_id = str(row[0])
    notice = queue_notice(conn, tenant, session_id, op.notice, op.at_ms)
    data = {"handoff_id": op.handoff_id, "notice_outbox_id": notice}
    audit(conn, EventKind.HANDOFF_STILL_WAITING, tenant, session_id, new_trace_id(), op.at_ms, data)
    return True
