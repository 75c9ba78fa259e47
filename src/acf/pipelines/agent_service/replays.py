"""Dead letters of the agent service pipeline, and their replay (DESIGN §16, seed 004
Story 7).

A call that failed for good leaves as its dead letter's request (``request_record``) the
request body as it was sent, without ``supersedes``, no header and no credential, and
beside it the failed execution's key (``execution_key``) and agent session
(``agent_session_id``: the one the service named, else the one the request named).

A REPLAY turn of such a letter (``replayed_execution``) sends that key again, to that agent
session, with the same message and answer (``replay_plan``): the service deduplicates it
(it replays or resumes an execution it knows, or runs the one it never accepted), so a
side effect of the failed execution does not run twice. The replay goes on the open row
when there is one (one open row per conversation), else on the row that failed when it is
still the agent's latest (one row per conversation and agent session), else on a new row.
A letter without an execution key (a turn that failed outside an execution: its
``messages``; or an execution that ended in a final ``ERROR``, which the same key would
only replay) is replayed as a new execution of its text.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.messages import InboundMessage
from acf.pipelines.agent_service.asks import SessionPlan
from acf.pipelines.agent_service.protocol import Answer, ExecuteRequest, Wire
from acf.ports.dead_letters import DeadLetter

EXECUTION_KEY = "execution_key"
AGENT_SESSION_KEY = "agent_session_id"


def request_record(
    request: ExecuteRequest, execution_key: str | None, agent_session_id: str | None
) -> dict[str, Any]:
    """A failed execution's request as its dead letter keeps it (see the module)."""
    body = request.model_dump(mode="json", exclude={"supersedes"}, exclude_none=True)
    return {**body, EXECUTION_KEY: execution_key, AGENT_SESSION_KEY: agent_session_id}


class _Recorded(Wire):
    """What ``request_record`` wrote, as a replay reads it back (other fields ignored)."""

    execution_key: str
    agent_session_id: str | None = None
    answer: Answer | None = None


@dataclass(frozen=True, slots=True)
class Replayed:
    """The execution a REPLAY turn sends again."""

    key: str
    agent_session_id: str | None
    answer_to: str | None
    """The ask the failed request answered, if it did."""


def replayed_execution(
    letter: DeadLetter | None, messages: Sequence[InboundMessage]
) -> Replayed | None:
    """The execution ``letter`` recorded, when the turn replays it (a REPLAY turn: a letter
    and no message) and the letter names one; else None."""
    if letter is None or messages:
        return None
    try:
        recorded = _Recorded.model_validate(dict(letter.request))
    except ValidationError:
        return None  # a turn that failed outside an execution: a new one
    if not recorded.execution_key:
        return None
    ask = None if recorded.answer is None else recorded.answer.ask_id
    return Replayed(recorded.execution_key, recorded.agent_session_id, ask)


def replay_plan(
    plan: SessionPlan, latest: AgentSessionRow | None, replayed: Replayed, profile: str
) -> SessionPlan:
    """``plan`` (``asks.plan``'s) for a turn replaying ``replayed``: its agent session and
    answer; on the open row if there is one, else on the row that failed when it is the
    agent's latest, else on the row ``plan`` resumes when it names the same agent session,
    else on a new row (see the module)."""
    row = plan.row
    if row is None or not row.status.is_open:
        if (
            latest is not None
            and not latest.status.is_open
            and latest.profile == profile
            and latest.execution_key == replayed.key
        ):
            row = latest
        elif row is None or row.agent_session_id != replayed.agent_session_id:
            row = None
    return replace(
        plan, row=row, agent_session_id=replayed.agent_session_id, answer_to=replayed.answer_to
    )
