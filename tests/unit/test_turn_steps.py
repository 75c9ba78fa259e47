"""Table tests of the turn engine's state machine (``domain.turn_steps``), one row per
branch: what happened in a running turn, and the step it leads to."""

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.modes import SessionMode
from acf.domain.supersede import SupersedeDecision as D
from acf.domain.turn_steps import (
    Abandon,
    Absorb,
    AttemptEnding,
    AttemptOutcome,
    Commit,
    Fail,
    ForceComplete,
    InDoubt,
    NewsStep,
    Queue,
    Retry,
    StandDown,
    Supersede,
    after_attempt,
    after_commit_refused,
    after_failure,
    after_mode_refused,
    on_adoption,
    on_new_messages,
)

E = AttemptEnding
S = AgentSettings(max_attempts=3, retry_backoff_ms=500, deadline_ms=30_000, restart_bound=3)


def ended(
    ending: AttemptEnding,
    attempt: int = 1,
    error: str = "",
    refused: bool = False,
    irreversible: bool = False,
) -> AttemptOutcome:
    return AttemptOutcome(ending, attempt, error, refused, irreversible)


AFTER_ATTEMPT = [
    ("a result commits", ended(E.FINISHED), Commit()),
    ("a result on the last attempt commits", ended(E.FINISHED, attempt=3), Commit()),
    ("lease lost: abandon", ended(E.LEASE_LOST), Abandon()),
    ("lease lost wins over attempts", ended(E.LEASE_LOST, attempt=3), Abandon()),
    ("new messages supersede", ended(E.NEW_MESSAGES), Supersede("new_messages")),
    (
        "the session left agent mode: stand down, with the mode found",
        AttemptOutcome(E.MODE_CHANGED, 1, mode=SessionMode.HUMAN),
        StandDown(SessionMode.HUMAN),
    ),
    (
        "the gate refused for the mode: stand down, the mode to be read",
        ended(E.MODE_CHANGED, attempt=3),
        StandDown(None),
    ),
    (
        "gate refused before passing: supersede",
        ended(E.PENDING_INPUT, error="unseen", refused=True),
        Supersede("irreversible_gate"),
    ),
    (
        "gate refused after passing: fail at once",
        ended(E.PENDING_INPUT, error="unseen", refused=True, irreversible=True),
        Fail("PendingInput not handled by the pipeline: unseen"),
    ),
    (
        "PendingInput not from a gate refusal: fail at once",
        ended(E.PENDING_INPUT, error="unseen"),
        Fail("PendingInput not handled by the pipeline: unseen"),
    ),
    (
        "in doubt: no retry, whatever the attempts",
        ended(E.IN_DOUBT, error="refund"),
        InDoubt("irreversible action in doubt: refund"),
    ),
    (
        "an exception retries after the backoff",
        ended(E.RAISED, error="ValueError: x"),
        Retry(500, "ValueError: x"),
    ),
    (
        "the backoff doubles",
        ended(E.RAISED, attempt=2, error="ValueError: x"),
        Retry(1000, "ValueError: x"),
    ),
    (
        "an exception on the last attempt fails",
        ended(E.RAISED, attempt=3, error="ValueError: x"),
        Fail("ValueError: x"),
    ),
    (
        "the deadline retries",
        ended(E.DEADLINE),
        Retry(500, "deadline of 30000 ms exceeded"),
    ),
    (
        "the deadline on the last attempt fails",
        ended(E.DEADLINE, attempt=3),
        Fail("deadline of 30000 ms exceeded"),
    ),
    ("a cancelled pipeline retries", ended(E.CANCELLED), Retry(500, "the pipeline was cancelled")),
    (
        "a cancelled pipeline on the last attempt fails",
        ended(E.CANCELLED, attempt=4),
        Fail("the pipeline was cancelled"),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [c[1:] for c in AFTER_ATTEMPT],
    ids=[c[0] for c in AFTER_ATTEMPT],
)
def test_after_attempt(outcome: AttemptOutcome, expected: object) -> None:
    assert after_attempt(outcome, S) == expected


def test_every_ending_has_a_row() -> None:
    assert {c[1].ending for c in AFTER_ATTEMPT} == set(AttemptEnding)


MODE_REFUSED = [
    ("before the irreversible gate: stand down", False, StandDown()),
    (
        "past the gate: commit silently over whatever arrived",
        True,
        Commit(over_unseen=True, silent=True),
    ),
]


@pytest.mark.parametrize(
    ("irreversible", "expected"),
    [c[1:] for c in MODE_REFUSED],
    ids=[c[0] for c in MODE_REFUSED],
)
def test_after_mode_refused(irreversible: bool, expected: object) -> None:
    assert after_mode_refused(irreversible) == expected


def test_the_backoff_is_capped() -> None:
    settings = AgentSettings(max_attempts=20, retry_backoff_ms=500, max_retry_backoff_ms=2_000)
    assert after_failure(10, "x", settings) == Retry(2_000, "x")
    assert after_failure(20, "x", settings) == Fail("x")


ADOPTION = [
    ("first attempt of a dead holder: run again", 1, Retry(0, "")),
    ("attempts left: run again", 2, Retry(0, "")),
    (
        "the process stopped in every attempt: fail",
        3,
        Fail("the process stopped during each of 3 attempt(s)"),
    ),
]


@pytest.mark.parametrize(
    ("attempt", "expected"), [c[1:] for c in ADOPTION], ids=[c[0] for c in ADOPTION]
)
def test_on_adoption(attempt: int, expected: object) -> None:
    assert on_adoption(attempt, S) == expected


NEWS = [
    # id, off, taken, hook, default, irreversible, restarts, expected
    ("off always queues", True, None, D.SUPERSEDE, D.SUPERSEDE, False, 0, Queue()),
    ("off queues a forced turn too", True, D.FORCE_COMPLETE, None, D.SUPERSEDE, False, 0, Queue()),
    ("default supersede", False, None, None, D.SUPERSEDE, False, 0, Supersede("new_messages")),
    ("default absorb", False, None, None, D.ABSORB, False, 0, Absorb()),
    ("default queue", False, None, None, D.QUEUE, False, 0, Queue()),
    ("the hook wins", False, None, D.ABSORB, D.SUPERSEDE, False, 0, Absorb()),
    ("the hook may force", False, None, D.FORCE_COMPLETE, D.QUEUE, False, 0, ForceComplete()),
    (
        "forced stays forced",
        False,
        D.FORCE_COMPLETE,
        D.SUPERSEDE,
        D.SUPERSEDE,
        False,
        0,
        ForceComplete(),
    ),
    (
        "an earlier absorb is asked again",
        False,
        D.ABSORB,
        None,
        D.SUPERSEDE,
        False,
        0,
        Supersede("new_messages"),
    ),
    ("past the gate: queue", False, None, D.SUPERSEDE, D.SUPERSEDE, True, 0, Queue()),
    ("restart bound: queue", False, None, None, D.SUPERSEDE, False, 3, Queue()),
]


@pytest.mark.parametrize(
    ("off", "taken", "hook", "default", "irreversible", "restarts", "expected"),
    [c[1:] for c in NEWS],
    ids=[c[0] for c in NEWS],
)
def test_on_new_messages(
    off: bool,
    taken: D | None,
    hook: D | None,
    default: D,
    irreversible: bool,
    restarts: int,
    expected: NewsStep,
) -> None:
    settings = AgentSettings(supersede=default, restart_bound=3)
    step = on_new_messages(
        off=off,
        taken=taken,
        hook=hook,
        irreversible_started=irreversible,
        restarts=restarts,
        settings=settings,
    )
    assert step == expected
    assert (
        step.decision
        is {
            Supersede: D.SUPERSEDE,
            Absorb: D.ABSORB,
            Queue: D.QUEUE,
            ForceComplete: D.FORCE_COMPLETE,
        }[type(step)]
    )


COMMIT_REFUSED = [
    ("queue commits over unseen", D.QUEUE, False, 0, Commit(over_unseen=True)),
    ("force_complete commits over unseen", D.FORCE_COMPLETE, False, 0, Commit(over_unseen=True)),
    ("supersede restarts", D.SUPERSEDE, False, 0, Supersede("new_messages")),
    ("absorb restarts", D.ABSORB, False, 0, Supersede("new_messages")),
    ("past the gate it commits", D.SUPERSEDE, True, 0, Commit(over_unseen=True)),
    ("at the restart bound it commits", D.ABSORB, False, 3, Commit(over_unseen=True)),
]


@pytest.mark.parametrize(
    ("decision", "irreversible", "restarts", "expected"),
    [c[1:] for c in COMMIT_REFUSED],
    ids=[c[0] for c in COMMIT_REFUSED],
)
def test_after_commit_refused(
    decision: D, irreversible: bool, restarts: int, expected: object
) -> None:
    assert after_commit_refused(decision, irreversible, restarts, S) == expected
