"""The ASK_USER cycle's decisions (``acf.pipelines.agent_service.asks``): which agent
session a turn talks to, whether it answers a pending question or starts fresh after the
question went stale, and how a question with options becomes the reply."""

from dataclasses import replace

import pytest

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.replies import Button
from acf.pipelines.agent_service.asks import (
    SessionPlan,
    abandoned,
    is_stale,
    pending_ask,
    plan,
    question_segment,
    with_notice,
)

ASKED_AT = 1_000_000
TIMEOUT_S = 300.0
S = AgentSessionStatus


def row(status: AgentSessionStatus = S.ACTIVE, **changes: object) -> AgentSessionRow:
    base = AgentSessionRow(
        tenant="t1",
        row_id="r1",
        session_id="s1",
        agent="a1",
        profile="support",
        status=status,
        created_at_ms=0,
        last_interaction_at_ms=ASKED_AT,
        agent_session_id="as-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


WAITING = row(
    S.AWAITING_USER, pending_ask_id="ask-1", pending_question="Which size?", asked_at_ms=ASKED_AT
)


@pytest.mark.parametrize(
    ("subject", "now_ms", "stale"),
    [
        (WAITING, ASKED_AT + 299_999, False),
        (WAITING, ASKED_AT + 300_000, True),  # the timeout's instant is stale
        (WAITING, ASKED_AT + 900_000, True),
        (replace(WAITING, asked_at_ms=None), ASKED_AT + 300_000, True),  # from last interaction
        (row(S.ACTIVE), ASKED_AT + 900_000, False),  # nothing waits
        (row(S.COMPLETED), ASKED_AT + 900_000, False),
    ],
)
def test_staleness(subject: AgentSessionRow, now_ms: int, stale: bool) -> None:
    assert is_stale(subject, now_ms, TIMEOUT_S) is stale


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (WAITING, "ask-1"),
        # The answer's execution is still open (a retry, a recovery, a correction): the same
        # ask is answered again.
        (replace(WAITING, status=S.ACTIVE, execution_open=True), "ask-1"),
        (replace(WAITING, status=S.ACTIVE, execution_open=False), None),
        (replace(WAITING, status=S.COMPLETED), None),
        (row(S.ACTIVE, execution_open=True), None),  # no ask on the row
    ],
)
def test_the_ask_a_turn_answers(subject: AgentSessionRow, expected: str | None) -> None:
    assert pending_ask(subject) == expected


FRESH_NOW = ASKED_AT + 10_000
STALE_NOW = ASKED_AT + 300_000
OTHER = row(S.ACTIVE, profile="billing", row_id="r9")


@pytest.mark.parametrize(
    ("open_row", "latest", "now_ms", "expected"),
    [
        # Nothing yet: a new agent session.
        (None, None, FRESH_NOW, SessionPlan(None, None)),
        # A waiting question, in time: answered in the same agent session.
        (WAITING, WAITING, FRESH_NOW, SessionPlan(WAITING, "as-1", "ask-1")),
        # Stale: abandoned, and the turn starts fresh (no agent session, no answer).
        (WAITING, WAITING, STALE_NOW, SessionPlan(None, None, expired=WAITING)),
        # An open execution of this profile: continued.
        (row(S.ACTIVE), row(S.ACTIVE), FRESH_NOW, SessionPlan(row(S.ACTIVE), "as-1")),
        # The last execution completed: its agent session resumes, on the same row.
        (None, row(S.COMPLETED), FRESH_NOW, SessionPlan(row(S.COMPLETED), "as-1")),
        # Failed or abandoned before: fresh.
        (None, row(S.FAILED), FRESH_NOW, SessionPlan(None, None)),
        (None, row(S.ABANDONED), FRESH_NOW, SessionPlan(None, None)),
        # A completed row that never learnt its agent session: fresh.
        (None, row(S.COMPLETED, agent_session_id=None), FRESH_NOW, SessionPlan(None, None)),
        # Another profile's rows are never resumed; an open one is closed.
        (OTHER, None, FRESH_NOW, SessionPlan(None, None, closed=OTHER)),
        (None, replace(OTHER, status=S.COMPLETED), FRESH_NOW, SessionPlan(None, None)),
    ],
)
def test_the_plan_of_a_turn(
    open_row: AgentSessionRow | None,
    latest: AgentSessionRow | None,
    now_ms: int,
    expected: SessionPlan,
) -> None:
    got = plan(open_row, latest, profile="support", now_ms=now_ms, ask_timeout_s=TIMEOUT_S)
    assert got == expected


def test_an_abandoned_row_keeps_its_question_and_closes_its_execution() -> None:
    waiting = replace(WAITING, execution_open=True)
    gone = abandoned(waiting, STALE_NOW)
    assert gone.status is S.ABANDONED and not gone.status.is_open
    assert not gone.execution_open
    assert gone.last_interaction_at_ms == STALE_NOW
    assert (gone.pending_ask_id, gone.pending_question) == ("ask-1", "Which size?")
    assert gone.last_error == "the question was not answered in time"
    assert abandoned(waiting, STALE_NOW, "replaced").last_error == "replaced"


@pytest.mark.parametrize(
    ("options", "buttons"),
    [
        ((), ()),
        (("S", "M"), (Button("option-1", "S"), Button("option-2", "M"))),
        # Blank and repeated options are dropped (two equal titles cannot be told apart).
        (("S", " ", "S", " L "), (Button("option-1", "S"), Button("option-2", "L"))),
    ],
)
def test_a_question_carries_its_options_as_buttons(
    options: tuple[str, ...], buttons: tuple[Button, ...]
) -> None:
    segment = question_segment(" Which size? ", options)
    assert segment.text == "Which size?"
    assert segment.buttons == buttons


@pytest.mark.parametrize(
    ("notice", "text", "expected"),
    [
        (None, "Hello", "Hello"),
        ("", "Hello", "Hello"),
        ("Expired.", "Hello", "Expired.\n\nHello"),
        ("Expired. ", "  ", "Expired."),
    ],
)
def test_the_expiry_notice_leads_the_reply(notice: str | None, text: str, expected: str) -> None:
    assert with_notice(notice, text) == expected
