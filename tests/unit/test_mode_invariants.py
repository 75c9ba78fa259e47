"""The invariants on who answers a session (``acf.testing.mode_invariants``), each shown to
catch what it is for and to let through what the runtime does on purpose."""

from collections.abc import Sequence
from itertools import count

import pytest

from acf.domain.channels import Channel
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.session_key import SessionKey
from acf.domain.turns import Turn, TurnPhase
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.testing.invariants import messages_in_one_committed_range
from acf.testing.mode_invariants import (
    agent_never_answers_human_ranges,
    no_agent_reply_outside_agent_mode,
)

KEY = SessionKey("t1", "a1", "alice", Channel.WEB)
BLOCKS = {"b1": (Channel.WEB, "alice"), "b2": (Channel.WEB, "bob")}


def session(
    mode: SessionMode = SessionMode.AGENT, last: int = 3, consumed: int = 3
) -> SessionRecord:
    return SessionRecord(
        "s1", KEY, SessionStatus.OPEN, last, consumed, {}, 1, False, None, 0, 0, mode=mode
    )


def turn(
    turn_id: str,
    from_seq: int,
    to_seq: int,
    kind: TurnKind = TurnKind.AGENT,
    phase: TurnPhase = TurnPhase.COMMITTED,
) -> Turn:
    return Turn(
        "t1", turn_id, "s1", "g1", phase, from_seq, to_seq, 1, 1, False, "tr", 0, 0, kind=kind
    )


class Trail:
    """Events in commit order (increasing ids)."""

    def __init__(self) -> None:
        self.ids = count(1)

    def __call__(
        self, kind: EventKind, at_ms: int, turn_id: str | None = None, trace: str = "x", **data: str
    ) -> FabricEvent:
        correlation = Correlation("t1", trace, "s1", turn_id)
        return FabricEvent(kind, at_ms, correlation, data, next(self.ids))


def problems(
    events: Sequence[FabricEvent], blocks: Sequence[FabricEvent] = (), turns: Sequence[Turn] = ()
) -> list[str]:
    known = turns or [turn("a1", 0, 1), turn("a2", 1, 2), turn("h1", 1, 2, TurnKind.HUMAN)]
    return no_agent_reply_outside_agent_mode(session(), known, events, blocks, BLOCKS)


def test_an_agent_turn_over_an_operators_range_is_caught() -> None:
    human = turn("h1", 1, 3, TurnKind.HUMAN)
    assert agent_never_answers_human_ranges("s1", [turn("a1", 0, 1), human, turn("a2", 3, 4)]) == []
    caught = agent_never_answers_human_ranges("s1", [turn("a1", 0, 2), human])
    assert caught == [
        "session s1: agent turn a1 (0, 2] answered messages operator turn h1 (1, 3] answered"
    ]
    # A superseded agent turn answered nothing.
    superseded = turn("a1", 0, 2, phase=TurnPhase.SUPERSEDED)
    assert agent_never_answers_human_ranges("s1", [superseded, human]) == []


def test_a_reply_queued_in_human_mode_is_caught_and_one_after_the_resume_is_not() -> None:
    e = Trail()
    handed = e(EventKind.SESSION_HANDED_OFF, 10, trace="op")
    late = e(EventKind.RESPONSE_QUEUED, 20, "a2", trace="late")
    assert problems([handed, late]) == [
        "session s1: agent turn a2 queued a reply in human mode (event 2)"
    ]
    resumed = e(EventKind.SESSION_RESUMED, 30, trace="op")
    after = e(EventKind.RESPONSE_QUEUED, 40, "a2", trace="next")
    assert problems([handed, resumed, after]) == []
    # An operator's reply and a notice are no agent's.
    operator = e(EventKind.RESPONSE_QUEUED, 20, "h1", trace="op")
    notice = e(EventKind.RESPONSE_QUEUED, 20, "operator-n1", trace="op")
    assert problems([handed, operator, notice]) == []


def test_the_handoff_of_the_replys_own_commit_is_not_held_against_it() -> None:
    """The pipeline's handoff (or the fallback rule, or a policy-blocks cool-down) rides in
    the turn's commit: its ConsumeRange checked agent mode before the mode changed."""
    e = Trail()
    same_turn = e(EventKind.SESSION_HANDED_OFF, 10, "a1", trace="t")
    reply = e(EventKind.RESPONSE_QUEUED, 10, "a1", trace="t")
    assert problems([same_turn, reply]) == []
    e = Trail()
    same_unit = e(EventKind.ABUSE_COOLDOWN_STARTED, 10, trace="t")
    reply = e(EventKind.RESPONSE_QUEUED, 10, "a1", trace="t")
    assert problems([same_unit, reply]) == []
    # ... but a later turn's reply is held against it.
    later = e(EventKind.RESPONSE_QUEUED, 20, "a2", trace="t2")
    assert problems([same_unit, reply, later]) == [
        "session s1: agent turn a2 queued a reply in cooldown mode (event 3)"
    ]


def test_a_cool_down_ended_at_the_replys_instant_lets_it_through() -> None:
    e = Trail()
    started = e(EventKind.ABUSE_COOLDOWN_STARTED, 10, trace="m4")
    ended = e(EventKind.ABUSE_COOLDOWN_ENDED, 90, trace="m4")
    held = e(EventKind.RESPONSE_QUEUED, 90, "a2", trace="m4")
    assert problems([started, ended, held]) == []


@pytest.mark.parametrize(
    ("block_id", "caught"),
    [("b1", ["session s1: agent turn a2 queued a reply in blocked mode (event 2)"]), ("b2", [])],
)
def test_the_tenants_block_list_counts_for_the_customer_it_names(
    block_id: str, caught: list[str]
) -> None:
    e = Trail()
    blocked = e(EventKind.CUSTOMER_BLOCKED, 10, block_id=block_id)
    reply = e(EventKind.RESPONSE_QUEUED, 20, "a2", trace="late")
    lifted = e(EventKind.CUSTOMER_UNBLOCKED, 30, block_id=block_id)
    after = e(EventKind.RESPONSE_QUEUED, 40, "a2", trace="later")
    assert problems([reply, after], [blocked, lifted]) == caught


def test_human_and_cooldown_sessions_may_keep_unanswered_messages() -> None:
    turns = [turn("a1", 0, 1)]
    for mode in (SessionMode.HUMAN, SessionMode.COOLDOWN):
        assert messages_in_one_committed_range(session(mode, 3, 1), turns) == []
        # ... but never an unanswered message below what was consumed.
        assert messages_in_one_committed_range(session(mode, 3, 2), turns) == [
            "session s1: message 2 is in 0 committed ranges"
        ]
    for mode in (SessionMode.AGENT, SessionMode.BLOCKED):
        assert messages_in_one_committed_range(session(mode, 3, 1), turns) == [
            "session s1: message 2 is in 0 committed ranges",
            "session s1: message 3 is in 0 committed ranges",
            "session s1: consumed 1 of 3",
        ]
    held = session(SessionMode.HUMAN, 3, 1)
    both = [turn("a1", 0, 1), turn("a2", 1, 3)]  # an agent range over held messages
    assert messages_in_one_committed_range(held, both) != []
