"""The ASK_USER cycle (DESIGN §16, seed 004 Story 6): which agent session a turn talks to,
whether it answers a pending question, and how a question reaches the customer. Pure,
table-tested.

A turn starts from the conversation's open row (ACTIVE or AWAITING_USER) and its latest
row of this agent (``ctx.agent_sessions``):

- an AWAITING_USER row asked at ``asked_at_ms`` is stale from ``asked_at_ms +
  ask_user_timeout_s``: it becomes ABANDONED and the turn starts fresh (no agent session,
  no answer), its reply led by the tenant's "that question expired" notice;
- a fresh AWAITING_USER row is answered: the request carries ``answer: {ask_id, text}``;
  so is an ACTIVE row whose open execution was sending an answer (a retry, a recovery, or
  a restart after the customer corrected the answer);
- otherwise the turn resumes the open row's agent session, else the latest row's when it
  COMPLETED (on that row again: one row per conversation and agent session), else the
  service opens a new one (on a new row).

An open row of another profile (a router that switched services while one ran or waited)
is closed as ABANDONED, without notice, and the turn starts a fresh agent session.
"""

from dataclasses import dataclass, replace

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.replies import Button, ReplySegment

OPTION_ID = "option-{n}"
"""The id of the button of an ask's option ``n`` (from 1); its title is the option."""


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Where a turn's request goes."""

    row: AgentSessionRow | None
    """The row the turn continues: the open one, or a COMPLETED one whose agent session
    resumes (None: the turn opens a new row)."""
    agent_session_id: str | None
    """The agent session the request names (None: the service opens one)."""
    answer_to: str | None = None
    """The pending ask the turn's text answers, if any."""
    expired: AgentSessionRow | None = None
    """An AWAITING_USER row whose question went stale: to be saved ABANDONED."""
    closed: AgentSessionRow | None = None
    """An open row of another profile: to be saved ABANDONED (quietly)."""


def is_stale(row: AgentSessionRow, now_ms: int, timeout_s: float) -> bool:
    """Whether ``row`` waits for an answer whose time is up (``now >= asked + timeout``).
    A row waiting without ``asked_at_ms`` counts from its last interaction."""
    if row.status is not AgentSessionStatus.AWAITING_USER:
        return False
    asked = row.asked_at_ms if row.asked_at_ms is not None else row.last_interaction_at_ms
    return asked + round(timeout_s * 1000) <= now_ms


def pending_ask(row: AgentSessionRow) -> str | None:
    """The ask the next request of ``row`` answers: its pending ask while it waits, or
    while the execution that sent the answer is still open."""
    if row.pending_ask_id is None:
        return None
    if row.status is AgentSessionStatus.AWAITING_USER:
        return row.pending_ask_id
    if row.status is AgentSessionStatus.ACTIVE and row.execution_open:
        return row.pending_ask_id
    return None


def plan(
    open_row: AgentSessionRow | None,
    latest: AgentSessionRow | None,
    *,
    profile: str,
    now_ms: int,
    ask_timeout_s: float,
) -> SessionPlan:
    """The plan of a turn given the conversation's open and latest rows (see the module)."""
    if open_row is not None and open_row.profile != profile:
        return SessionPlan(None, None, closed=open_row)
    if open_row is not None and is_stale(open_row, now_ms, ask_timeout_s):
        return SessionPlan(None, None, expired=open_row)
    if open_row is not None:
        return SessionPlan(open_row, open_row.agent_session_id, pending_ask(open_row))
    if (
        latest is not None
        and latest.profile == profile
        and latest.status is AgentSessionStatus.COMPLETED
        and latest.agent_session_id is not None
    ):
        return SessionPlan(latest, latest.agent_session_id)
    return SessionPlan(None, None)


STALE = "the question was not answered in time"


def abandoned(row: AgentSessionRow, now_ms: int, why: str = STALE) -> AgentSessionRow:
    """``row`` given up: ABANDONED, nothing open (a question stays on the row, for the
    record), ``why`` as its last error."""
    return replace(
        row,
        status=AgentSessionStatus.ABANDONED,
        last_interaction_at_ms=now_ms,
        execution_open=False,
        last_error=why,
    )


def question_segment(question: str, options: tuple[str, ...]) -> ReplySegment:
    """The question as the turn's reply, its options as buttons (the delivery shows them
    as numbered options where the channel has no buttons, and maps a number back)."""
    unique = tuple(dict.fromkeys(o.strip() for o in options if o.strip()))
    buttons = tuple(Button(OPTION_ID.format(n=n), title) for n, title in enumerate(unique, start=1))
    return ReplySegment(question.strip() or question, buttons)


def with_notice(notice: str | None, text: str) -> str:
    """``text`` led by ``notice`` (the ask-expired notice) when there is one."""
    if not notice:
        return text
    return f"{notice.strip()}\n\n{text.strip()}" if text.strip() else notice.strip()
