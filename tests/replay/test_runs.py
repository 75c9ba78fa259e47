"""Same-sender runs and the measures of a strategy (pure)."""

from acf.replay.runs import Reply, Run, measure, runs_of
from acf.replay.sources import ChatLine
from acf.replay.tokens import TokenTally


def line(conv: str, sender: str, at_s: float, text: str = "x") -> ChatLine:
    return ChatLine(conv, sender, int(at_s * 1000), text)


LINES = [
    line("1", "ann", 0),
    line("1", "ann", 3),  # same run
    line("2", "cy", 4),  # another conversation does not break ann's run
    line("1", "bob", 10),  # breaks it
    line("1", "ann", 20),  # ann's second run
]


def test_runs_are_consecutive_messages_of_one_sender_in_one_conversation() -> None:
    assert runs_of(LINES) == [
        Run("1/ann", 1, 2, 3000),
        Run("2/cy", 1, 1, 4000),
        Run("1/bob", 1, 1, 10000),
        Run("1/ann", 3, 3, 20000),
    ]


def test_measure_counts_replies_per_run_and_the_added_wait() -> None:
    runs = runs_of(LINES)
    replies = [
        Reply("1/ann", 0, 1, 2000),  # answered the first fragment alone ...
        Reply("1/ann", 1, 2, 6000),  # ... then the second: 2 replies for one run
        Reply("2/cy", 0, 1, 5500),
        Reply("1/bob", 0, 1, 11000),
        Reply("1/ann", 2, 3, 23000),
    ]
    m = measure("s", runs, replies, latency_ms=1000)
    assert m.runs == 4 and m.messages == 5 and m.replies == 5
    assert m.replies_per_run == 5 / 4
    assert m.answered_once == 3 / 4
    # added waits (beyond the 1 s latency): ann run 1: 6-3-1 = 2 s; cy 0.5; bob 0; ann 2 s
    assert m.wait_p50_ms == 1250.0
    assert m.wait_p95_ms == m.wait_p99_ms == 2000.0
    assert m.replies_per_100 == 100.0


def test_measure_carries_the_counts_measured_elsewhere_per_100_messages() -> None:
    runs = runs_of(LINES)
    replies = [Reply("1/ann", 0, 3, 21000), Reply("2/cy", 0, 1, 5000), Reply("1/bob", 0, 1, 1)]
    tally = TokenTally(requests=4, prompt=400, completion=90, cancelled=1)
    tally.cancelled_would_use, tally.cancelled_used = 60, 15
    m = measure(
        "s",
        runs,
        replies,
        0,
        talked_over=1,
        talked_over_typing=2,
        superseded_runs=3,
        wasted_ms=1500,
        tokens=tally,
    )
    assert (m.talked_over, m.talked_over_typing, m.superseded_runs, m.wasted_ms) == (1, 2, 3, 1500)
    assert m.replies_per_100 == 60.0 and m.talked_over_per_100 == 20.0
    assert m.talked_over_typing_per_100 == 40.0 and m.superseded_per_100 == 60.0
    assert m.wasted_s_per_100 == 30.0  # 1.5 s over 5 messages
    assert m.tokens_saved_per_100 == 900.0  # 45 answer tokens not streamed, over 5 messages


def test_without_typing_or_tokens_those_measures_are_none() -> None:
    m = measure("s", runs_of(LINES), [], 0)
    assert m.talked_over_typing_per_100 is None and m.tokens_saved_per_100 is None
    assert (m.replies_per_100, m.wait_p99_ms, m.answered_once) == (0.0, 0.0, 0.0)


def test_runs_no_reply_answered_are_counted_not_hidden_in_the_wait() -> None:
    runs = runs_of(LINES)
    replies = [
        Reply("1/ann", 0, 1, 2000),  # only ann's first fragment: her first run's end unanswered
        Reply("1/bob", 0, 1, 11000),
        # cy's run and ann's second run get no reply at all
    ]
    m = measure("drops", runs, replies, latency_ms=1000)
    assert m.unanswered_runs == 3
    assert m.unanswered_per_100 == 60.0  # 3 runs over 5 messages
    assert m.wait_p95_ms == 0.0  # bob's, the only answered run: the wait alone looks perfect
    assert (
        measure("all", runs, [Reply(r.session, 0, r.last_seq, 0) for r in runs], 0).unanswered_runs
        == 0
    )
