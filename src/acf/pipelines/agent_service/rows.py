"""An agent session row through one execution (DESIGN §16): the execution key, written
ahead of the request, and the row after each way an execution ends. Pure, table-tested.

The execution key (the ``Idempotency-Key``) belongs to what was asked: the request
without ``supersedes``, within one turn group (``fingerprint``). A row already holding the
key of the same fingerprint sends it again (a retry, a resumed stream, a recovery after a
crash, even after the execution ended: the service replays it); any other request gets a
new key, and names the key of an execution still open on the row in ``supersedes`` (the
customer corrected themself while it ran). So a new key is minted only after a definite
end (COMPLETE, ASK_USER, a final ERROR) or a supersede; a REPLAY turn of a failed
execution's dead letter sends that execution's key again (``acf.pipelines.agent_service.
replays``). The row as an execution ended is written with the turn's commit; a turn
superseded after the end leaves the row as it was while it ran (ACTIVE, the execution
open), so the restart names that key in ``supersedes`` and answers no question the
customer never saw.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.pipelines.agent_service.protocol import ExecuteRequest

MAX_ERROR_CHARS = 300


def fingerprint(request: ExecuteRequest, group_id: str) -> str:
    """What an execution was asked: a hash of ``request`` (without ``supersedes``) and the
    turn group, so two turns never share a key even when they ask the same."""
    body = request.model_dump(mode="json", exclude={"supersedes"})
    canonical = json.dumps(
        {"group": group_id, "request": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyChoice:
    key: str
    supersedes: str | None
    """The open execution this one replaces, if any."""
    reused: bool
    """The row holds this key for this input already (nothing to write ahead)."""


def choose_key(
    row: AgentSessionRow | None,
    input_fp: str,
    mint: Callable[[], str],
    replayed: str | None = None,
) -> KeyChoice:
    """The key of the execution asking ``input_fp`` on ``row`` (see the module);
    ``replayed``: the key of the failed execution a REPLAY turn sends again, instead of a
    new one."""
    if row is not None and row.execution_key and row.execution_input == input_fp:
        return KeyChoice(row.execution_key, None, True)
    key = replayed or mint()
    open_key = row.execution_key if row is not None and row.execution_open else None
    return KeyChoice(key, None if open_key == key else open_key, False)


@dataclass(frozen=True, slots=True)
class Site:
    """Whose row: the conversation and the agent."""

    tenant: TenantId
    session_id: SessionId
    agent: AgentId
    profile: str


def written_ahead(
    row: AgentSessionRow | None,
    site: Site,
    *,
    row_id: str,
    key: str,
    input_fp: str,
    agent_session_id: str | None,
    answering: str | None,
    now_ms: int,
) -> AgentSessionRow:
    """The row saved before the request: ACTIVE with the execution open under ``key``.
    ``row`` None: a new row (``row_id``). While ``answering`` an ask, the ask stays on the
    row, so a retry or a recovery sends the same answer."""
    if row is None:
        row = AgentSessionRow(
            tenant=site.tenant,
            row_id=row_id,
            session_id=site.session_id,
            agent=site.agent,
            profile=site.profile,
            status=AgentSessionStatus.ACTIVE,
            created_at_ms=now_ms,
            last_interaction_at_ms=now_ms,
        )
    keep_ask = answering is not None and answering == row.pending_ask_id
    return replace(
        row,
        status=AgentSessionStatus.ACTIVE,
        last_interaction_at_ms=now_ms,
        agent_session_id=agent_session_id,
        pending_ask_id=row.pending_ask_id if keep_ask else None,
        pending_question=row.pending_question if keep_ask else None,
        pending_options=row.pending_options if keep_ask else (),
        asked_at_ms=row.asked_at_ms if keep_ask else None,
        execution_key=key,
        execution_input=input_fp,
        execution_open=True,
        last_error=None,
    )


def named(row: AgentSessionRow, agent_session_id: str) -> AgentSessionRow:
    """``row`` once the service named its agent session (the stream's first event)."""
    return replace(row, agent_session_id=agent_session_id)


def completed(row: AgentSessionRow, agent_session_id: str | None, now_ms: int) -> AgentSessionRow:
    """After COMPLETE: the agent session is kept for the next delegated turn."""
    return replace(
        row,
        status=AgentSessionStatus.COMPLETED,
        last_interaction_at_ms=now_ms,
        agent_session_id=agent_session_id or row.agent_session_id,
        pending_ask_id=None,
        pending_question=None,
        pending_options=(),
        asked_at_ms=None,
        execution_open=False,
        last_error=None,
    )


def awaiting(
    row: AgentSessionRow,
    agent_session_id: str | None,
    ask_id: str,
    question: str,
    options: tuple[str, ...],
    now_ms: int,
) -> AgentSessionRow:
    """After ASK_USER: the question waits for the customer from ``now_ms``."""
    return replace(
        row,
        status=AgentSessionStatus.AWAITING_USER,
        last_interaction_at_ms=now_ms,
        agent_session_id=agent_session_id or row.agent_session_id,
        pending_ask_id=ask_id,
        pending_question=question,
        pending_options=options,
        asked_at_ms=now_ms,
        execution_open=False,
        last_error=None,
    )


def failed(
    row: AgentSessionRow, error: str, now_ms: int, agent_session_id: str | None = None
) -> AgentSessionRow:
    """After a final ERROR or a call that failed for good."""
    text = " ".join(error.split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return replace(
        row,
        status=AgentSessionStatus.FAILED,
        last_interaction_at_ms=now_ms,
        agent_session_id=agent_session_id or row.agent_session_id,
        pending_ask_id=None,
        pending_question=None,
        pending_options=(),
        asked_at_ms=None,
        execution_open=False,
        last_error=text or "failed",
    )


def not_sent(row: AgentSessionRow, error: str, now_ms: int) -> AgentSessionRow:
    """After a call that reached no service (its circuit refused it, its key is not set): the
    row as the service still sees it. A question being answered stays pending (the answer
    never arrived; it can still expire), an agent session stays resumable (COMPLETED), and
    a row the service never heard of is FAILED. Never left ACTIVE and open: nothing runs."""
    text = " ".join(error.split())[:MAX_ERROR_CHARS] or "not sent"
    if row.pending_ask_id is not None:
        status = AgentSessionStatus.AWAITING_USER
    elif row.agent_session_id is not None:
        status = AgentSessionStatus.COMPLETED
    else:
        status = AgentSessionStatus.FAILED
    return replace(
        row,
        status=status,
        last_interaction_at_ms=now_ms,
        execution_open=False,
        last_error=text,
    )
