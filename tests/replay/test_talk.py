"""Talked-over replies (strict and during typing) and the Pareto front they are plotted on
(pure)."""

import pytest

from acf.replay.report import pareto_front
from acf.replay.runs import Reply
from acf.replay.sources import ChatLine
from acf.replay.talk import (
    SessionTyping,
    arrivals,
    count_during_typing,
    count_talked_over,
    during_typing,
    talked_over,
)
from acf.replay.typing_model import Stretch


@pytest.mark.parametrize(
    ("sent_at_ms", "next_at_ms", "expected"),
    [
        (10_000, None, False),  # it answered the session's last message
        (8_000, 10_000, False),  # exactly 2 s before: in time
        (8_001, 10_000, True),  # less than 2 s before: the customer was already writing
        (10_000, 10_000, True),  # together with the next message
        (12_000, 10_000, True),  # after it
        (1_000, 10_000, False),
    ],
)
def test_a_reply_talks_over_within_2_s_of_the_next_message_or_after_it(
    sent_at_ms: int, next_at_ms: int | None, expected: bool
) -> None:
    assert talked_over(sent_at_ms, next_at_ms) is expected


STRETCHES = [Stretch("c/ann", 2, 5_000, 9_000), Stretch("c/ann", 4, 20_000, 25_000)]


@pytest.mark.parametrize(
    ("sent_at_ms", "to_seq", "expected"),
    [
        (4_999, 1, False),  # before the first keystroke
        (5_000, 1, True),  # at the first keystroke
        (7_000, 1, True),
        (9_000, 1, True),  # as the customer sends: the reply crosses the message
        (9_001, 1, False),  # after the send, before the next stretch
        (7_000, 2, False),  # inside the stretch of a message the reply already covers
        (22_000, 2, True),  # inside a later message's stretch (seq 4 > 2)
        (22_000, 1, True),  # any later stretch counts, not only the next message's
        (22_000, 4, False),
        (30_000, 1, False),  # after every stretch
    ],
)
def test_a_reply_talks_over_typing_inside_a_later_messages_stretch(
    sent_at_ms: int, to_seq: int, expected: bool
) -> None:
    assert during_typing(sent_at_ms, to_seq, STRETCHES) is expected


def test_during_typing_without_stretches_is_never() -> None:
    assert during_typing(5_000, 0, []) is False


def line(sender: str, at_s: float, conv: str = "c") -> ChatLine:
    return ChatLine(conv, sender, int(at_s * 1000), "x")


def test_counts_follow_each_session_messages_in_order() -> None:
    lines = [line("ann", 0), line("bob", 1), line("ann", 3), line("ann", 10), line("ann", 2, "d")]
    times = arrivals(lines)
    assert times == {"c/ann": [0, 3000, 10_000], "c/bob": [1000], "d/ann": [2000]}
    replies = [
        Reply("c/ann", 0, 1, 2_000),  # 1 s before ann's second message: talked over
        Reply("c/ann", 1, 2, 7_000),  # 3 s before her third: in time
        Reply("c/ann", 2, 3, 12_000),  # her last message: never
        Reply("c/bob", 0, 1, 30_000),  # bob wrote once: never
        Reply("d/ann", 0, 1, 2_500),  # another conversation is another session
    ]
    assert count_talked_over(replies, times) == 1
    stretches = [Stretch("c/ann", 3, 6_000, 10_000), Stretch("c/bob", 1, 0, 1_000)]
    # ann's reply at 7 s lands while she types message 3; bob typed only before his reply
    assert count_during_typing(replies, stretches) == 1
    assert count_during_typing(replies, []) == 0


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([], []),
        ([(1.0, 5.0)], [0]),
        ([(1.0, 5.0), (2.0, 3.0), (3.0, 4.0)], [0, 1]),  # (3, 4) is beaten by (2, 3)
        ([(2.0, 2.0), (1.0, 1.0)], [1]),
        ([(1.0, 1.0), (1.0, 1.0)], [0, 1]),  # equal points beat neither
        ([(1.0, 3.0), (1.0, 2.0), (0.5, 9.0)], [2, 1]),  # by the wait, left to right
    ],
)
def test_the_pareto_front_keeps_the_points_nothing_beats(
    points: list[tuple[float, float]], front: list[int]
) -> None:
    assert pareto_front(points) == front


def test_many_replies_are_looked_up_against_stretches_indexed_once() -> None:
    """A session's stretches are indexed once, not per reply: 100,000 replies against one
    customer's 100,000 stretches (a regression guard: rebuilding the index per reply made
    this quadratic, hours instead of a moment)."""
    n = 100_000
    stretches = [Stretch("c/ann", seq, seq * 10_000, seq * 10_000 + 5_000) for seq in range(1, n)]
    # each reply lands 2 s into the typing of the message after the one it answers
    replies = [Reply("c/ann", seq - 1, seq, seq * 10_000 + 12_000) for seq in range(1, n)]
    assert count_during_typing(replies, stretches) == n - 2  # the last reply: none after


def test_overlapping_stretches_of_one_session_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        SessionTyping([Stretch("c/ann", 1, 0, 5_000), Stretch("c/ann", 2, 4_000, 9_000)])
    # one ending as the next begins is fine: a reply at that instant crosses both
    typing = SessionTyping([Stretch("c/ann", 1, 0, 5_000), Stretch("c/ann", 2, 5_000, 9_000)])
    assert typing.during(5_000, 1) and typing.during(5_000, 0)
    assert not typing.during(5_000, 2)
