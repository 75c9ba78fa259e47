"""An agent session row through one execution (``acf.pipelines.agent_service.rows``): the
execution key follows what was asked (same request and turn group: same key; anything
else: a new key naming the open one it supersedes), and each ending leaves the row as the
next turn needs it."""

from dataclasses import replace

import pytest

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.pipelines.agent_service.protocol import (
    Answer,
    CustomerMessage,
    ExecuteRequest,
    HistoryItem,
    Role,
    UserContext,
)
from acf.pipelines.agent_service.rows import (
    KeyChoice,
    Site,
    awaiting,
    choose_key,
    completed,
    failed,
    fingerprint,
    named,
    not_sent,
    written_ahead,
)

S = AgentSessionStatus
SITE = Site("t1", "s1", "a1", "support")
REQUEST = ExecuteRequest(
    conversation_id="s1",
    message=CustomerMessage(text="Where is my parcel?"),
    chat_history=[HistoryItem(role=Role.USER, content="hi")],
    user_context=UserContext(tenant="t1", channel="web"),
)


def test_the_fingerprint_is_the_request_and_the_turn_group() -> None:
    base = fingerprint(REQUEST, "g1")
    assert fingerprint(REQUEST.model_copy(), "g1") == base
    # supersedes is not part of what was asked
    assert fingerprint(REQUEST.model_copy(update={"supersedes": "k0"}), "g1") == base
    assert fingerprint(REQUEST, "g2") != base  # another turn never shares the key
    for change in (
        {"message": CustomerMessage(text="Where is my parcel? The blue one")},
        {"agent_session_id": "as-1"},
        {"chat_history": []},
        {"answer": Answer(ask_id="ask-1", text="Where is my parcel?")},
    ):
        assert fingerprint(REQUEST.model_copy(update=change), "g1") != base, change


def row(**changes: object) -> AgentSessionRow:
    base = AgentSessionRow(
        tenant="t1",
        row_id="r1",
        session_id="s1",
        agent="a1",
        profile="support",
        status=S.ACTIVE,
        created_at_ms=10,
        last_interaction_at_ms=20,
        agent_session_id="as-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def mint() -> str:
    return "k-new"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (None, KeyChoice("k-new", None, False)),
        # The same input on the row: the same key, nothing to write (a retry, a recovery).
        (
            row(execution_key="k1", execution_input="fp", execution_open=True),
            KeyChoice("k1", None, True),
        ),
        # ... even on a row that ended (written before the end moved into the commit).
        (
            row(status=S.COMPLETED, execution_key="k1", execution_input="fp"),
            KeyChoice("k1", None, True),
        ),
        # Another input while an execution is open: a new key superseding it.
        (
            row(execution_key="k1", execution_input="other", execution_open=True),
            KeyChoice("k-new", "k1", False),
        ),
        # Another input after a definite end: a new key, nothing superseded.
        (
            row(status=S.AWAITING_USER, execution_key="k1", execution_input="other"),
            KeyChoice("k-new", None, False),
        ),
    ],
)
def test_the_execution_key(subject: AgentSessionRow | None, expected: KeyChoice) -> None:
    assert choose_key(subject, "fp", mint) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        # A replay sends the failed execution's key again, on a new row...
        (None, KeyChoice("k-failed", None, False)),
        # ... or on the row that failed (reopened by the write ahead).
        (
            row(status=S.FAILED, execution_key="k-failed", execution_input="old"),
            KeyChoice("k-failed", None, False),
        ),
        # An execution still open on the row is superseded by it.
        (
            row(execution_key="k1", execution_input="other", execution_open=True),
            KeyChoice("k-failed", "k1", False),
        ),
        # ... but never the replayed key itself.
        (
            row(execution_key="k-failed", execution_input="other", execution_open=True),
            KeyChoice("k-failed", None, False),
        ),
        # The replay's own input already written ahead (a lost memo): found again.
        (
            row(execution_key="k-failed", execution_input="fp", execution_open=True),
            KeyChoice("k-failed", None, True),
        ),
    ],
)
def test_a_replay_sends_the_failed_key(
    subject: AgentSessionRow | None, expected: KeyChoice
) -> None:
    assert choose_key(subject, "fp", mint, "k-failed") == expected


def test_a_new_row_is_written_ahead_active_and_open() -> None:
    ahead = written_ahead(
        None,
        SITE,
        row_id="r7",
        key="k1",
        input_fp="fp",
        agent_session_id=None,
        answering=None,
        now_ms=500,
    )
    assert ahead == AgentSessionRow(
        tenant="t1",
        row_id="r7",
        session_id="s1",
        agent="a1",
        profile="support",
        status=S.ACTIVE,
        created_at_ms=500,
        last_interaction_at_ms=500,
        execution_key="k1",
        execution_input="fp",
        execution_open=True,
    )


WAITING = row(
    status=S.AWAITING_USER,
    pending_ask_id="ask-1",
    pending_question="Which size?",
    pending_options=("S", "M"),
    asked_at_ms=15,
    execution_key="k0",
    last_error="old",
)


def test_an_answer_keeps_the_ask_on_the_row_while_its_execution_runs() -> None:
    ahead = written_ahead(
        WAITING,
        SITE,
        row_id="ignored",
        key="k1",
        input_fp="fp",
        agent_session_id="as-1",
        answering="ask-1",
        now_ms=600,
    )
    assert ahead.row_id == "r1" and ahead.created_at_ms == 10
    assert ahead.status is S.ACTIVE and ahead.execution_open
    assert (ahead.pending_ask_id, ahead.asked_at_ms, ahead.pending_options) == (
        "ask-1",
        15,
        ("S", "M"),
    )
    assert (ahead.execution_key, ahead.execution_input, ahead.last_error) == ("k1", "fp", None)


def test_a_message_that_answers_nothing_clears_the_ask() -> None:
    ahead = written_ahead(
        WAITING,
        SITE,
        row_id="r1",
        key="k1",
        input_fp="fp",
        agent_session_id="as-1",
        answering=None,
        now_ms=600,
    )
    assert (ahead.pending_ask_id, ahead.pending_question, ahead.asked_at_ms) == (None, None, None)
    assert ahead.pending_options == ()


def test_the_endings() -> None:
    running = replace(WAITING, status=S.ACTIVE, execution_open=True, agent_session_id=None)
    assert named(running, "as-2").agent_session_id == "as-2"

    done = completed(running, "as-2", 900)
    assert (done.status, done.agent_session_id, done.execution_open) == (S.COMPLETED, "as-2", False)
    assert (done.pending_ask_id, done.asked_at_ms, done.last_error) == (None, None, None)
    assert done.execution_key == "k0"  # kept: a recovery of the turn finds it

    asked = awaiting(running, "as-2", "ask-2", "Colour?", ("red",), 950)
    assert asked.status is S.AWAITING_USER and not asked.execution_open
    assert (asked.pending_ask_id, asked.pending_question, asked.pending_options) == (
        "ask-2",
        "Colour?",
        ("red",),
    )
    assert asked.asked_at_ms == 950 == asked.last_interaction_at_ms

    broken = failed(running, "  HTTP 500:\n boom  " + "x" * 400, 990)
    assert broken.status is S.FAILED and not broken.execution_open
    assert broken.pending_ask_id is None
    assert broken.last_error is not None and broken.last_error.startswith("HTTP 500: boom x")
    assert len(broken.last_error) == 300 and broken.last_error.endswith("...")
    assert failed(running, "x", 990, "as-3").agent_session_id == "as-3"
    assert completed(replace(running, agent_session_id="as-1"), None, 1).agent_session_id == "as-1"


@pytest.mark.parametrize(
    ("pending", "agent_session_id", "status"),
    [
        ("ask-1", "as-1", S.AWAITING_USER),  # the answer never arrived: still asked
        (None, "as-1", S.COMPLETED),  # the agent session stays resumable
        (None, None, S.FAILED),  # the service never heard of it
    ],
)
def test_a_call_that_reached_no_service_leaves_the_row_as_the_service_sees_it(
    pending: str | None, agent_session_id: str | None, status: AgentSessionStatus
) -> None:
    ahead = replace(
        WAITING,
        status=S.ACTIVE,
        pending_ask_id=pending,
        agent_session_id=agent_session_id,
        execution_key="k1",
        execution_open=True,
    )
    left = not_sent(ahead, "circuit open", 900)
    assert (left.status, left.execution_open, left.last_error) == (status, False, "circuit open")
    assert left.pending_ask_id == pending and left.last_interaction_at_ms == 900
    assert not left.status.is_open or left.status is S.AWAITING_USER
