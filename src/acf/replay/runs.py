"""Same-sender runs and how well a strategy answered them (pure).

A run is a maximal stretch of consecutive messages from one sender in one conversation:
one "thought" that ideally gets one reply. Each (conversation, sender) is replayed as one
customer session, whose messages get sequence numbers 1, 2, 3 ... in time order; a reply
covers the range ``(from_seq, to_seq]`` of its turn.

A ``Measure`` holds what one strategy did to the whole log. Counts are per 100 messages
(``*_per_100``) so that logs and halves of a log compare; the per-run figures (replies per
run, runs answered once) mostly describe the log's own shape and come second. The
talked-over counts come from ``acf.replay.talk``, the wasted pipeline time from
``acf.replay.meter``.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from acf.replay.sources import ChatLine
from acf.replay.tokens import TokenTally
from acf.stats import percentile


@dataclass(frozen=True, slots=True)
class Run:
    session: str
    first_seq: int
    last_seq: int
    last_at_ms: int

    @property
    def size(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True, slots=True)
class Reply:
    session: str
    from_seq: int
    to_seq: int
    sent_at_ms: int


@dataclass(frozen=True, slots=True)
class Measure:
    strategy: str
    runs: int
    messages: int
    replies: int
    replies_per_run: float
    answered_once: float
    """Share of runs that got exactly one reply."""
    wait_p50_ms: float
    wait_p95_ms: float
    wait_p99_ms: float
    """Wait added after a run's last message, beyond the pipeline's own latency."""
    talked_over: int
    """Replies delivered after the customer's next message arrived or less than 2 s before
    it (``acf.replay.talk``)."""
    superseded_runs: int
    """Pipeline runs whose result a supersede cancelled or discarded at the commit."""
    wasted_ms: int
    """The pipeline time those runs spent."""
    talked_over_typing: int | None = None
    """Replies delivered while the customer was typing a later message; None without a
    typing model."""
    tokens: TokenTally | None = None
    """What the strategy paid, when the replayed pipeline is a metered generation."""
    unanswered_runs: int = 0
    """Runs that no reply answered (none covered their last message): left out of the
    added wait, so a strategy that drops replies must be seen here."""

    def per_100(self, count: float) -> float:
        """``count`` per 100 messages of the log."""
        return 100 * count / (self.messages or 1)

    @property
    def replies_per_100(self) -> float:
        return self.per_100(self.replies)

    @property
    def talked_over_per_100(self) -> float:
        return self.per_100(self.talked_over)

    @property
    def talked_over_typing_per_100(self) -> float | None:
        typing = self.talked_over_typing
        return None if typing is None else self.per_100(typing)

    @property
    def superseded_per_100(self) -> float:
        return self.per_100(self.superseded_runs)

    @property
    def wasted_s_per_100(self) -> float:
        return self.per_100(self.wasted_ms / 1000)

    @property
    def unanswered_per_100(self) -> float:
        return self.per_100(self.unanswered_runs)

    @property
    def tokens_saved_per_100(self) -> float | None:
        """Answer tokens that cancelled generations did not stream (None without tokens)."""
        return None if self.tokens is None else self.per_100(self.tokens.saved)


def session_of(line: ChatLine) -> str:
    return f"{line.conversation}/{line.sender}"


def runs_of(lines: Sequence[ChatLine]) -> list[Run]:
    """Runs in time order; ``lines`` must be in time order."""
    seqs: dict[str, int] = defaultdict(int)
    open_runs: dict[str, tuple[str, int, int, int]] = {}  # conversation -> run in progress
    finished: list[Run] = []
    for line in lines:
        session = session_of(line)
        seqs[session] += 1
        seq = seqs[session]
        current = open_runs.get(line.conversation)
        if current is not None and current[0] == session:
            open_runs[line.conversation] = (session, current[1], seq, line.at_ms)
            continue
        if current is not None:
            finished.append(Run(current[0], current[1], current[2], current[3]))
        open_runs[line.conversation] = (session, seq, seq, line.at_ms)
    finished += [Run(s, a, b, t) for s, a, b, t in open_runs.values()]
    return sorted(finished, key=lambda r: r.last_at_ms)


def measure(
    strategy: str,
    runs: Sequence[Run],
    replies: Sequence[Reply],
    latency_ms: int,
    *,
    talked_over: int = 0,
    talked_over_typing: int | None = None,
    superseded_runs: int = 0,
    wasted_ms: int = 0,
    tokens: TokenTally | None = None,
) -> Measure:
    """The per-run figures of ``replies`` against ``runs`` (the added wait of each answered
    run, the runs left unanswered), with the counts measured elsewhere (talked over,
    superseded work, tokens) carried into the ``Measure``."""
    by_session: Mapping[str, list[Reply]] = defaultdict(list)
    for reply in replies:
        by_session[reply.session].append(reply)
    counts: list[int] = []
    waits: list[float] = []
    unanswered = 0
    for run in runs:
        mine = by_session.get(run.session, [])
        covering = [r for r in mine if r.from_seq < run.last_seq and r.to_seq >= run.first_seq]
        counts.append(len(covering))
        answer = [r for r in covering if r.from_seq < run.last_seq <= r.to_seq]
        if answer:
            waits.append(max(0.0, answer[0].sent_at_ms - run.last_at_ms - latency_ms))
        else:
            unanswered += 1
    total = len(runs) or 1
    return Measure(
        strategy=strategy,
        runs=len(runs),
        messages=sum(r.size for r in runs),
        replies=len(replies),
        replies_per_run=sum(counts) / total,
        answered_once=sum(c == 1 for c in counts) / total,
        wait_p50_ms=percentile(waits, 50),
        wait_p95_ms=percentile(waits, 95),
        wait_p99_ms=percentile(waits, 99),
        talked_over=talked_over,
        superseded_runs=superseded_runs,
        wasted_ms=wasted_ms,
        talked_over_typing=talked_over_typing,
        tokens=tokens,
        unanswered_runs=unanswered,
    )
