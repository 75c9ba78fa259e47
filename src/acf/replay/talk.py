"""Talked-over replies: an answer that lands while the customer is still talking (pure).

A reply answers its turn's range ``(from_seq, to_seq]`` of one customer session. The
customer's *next* message is the session's message ``to_seq + 1``: the first one the reply
did not see. Two measures say whether the reply talked over the customer:

- **strict** (needs only the log): the reply was delivered after that next message arrived,
  or less than ``TALK_MARGIN_MS`` (2 s) before it: too late to stop the customer, who was
  already writing on. Exactly 2 s before is not talked over; a reply to the session's last
  message never is;
- **during typing** (needs a typing model): the reply was delivered while the customer was
  composing a later message, inside a typing ``Stretch`` of the session whose ``seq`` is
  above the reply's ``to_seq``. A stretch runs from its first keystroke to its send, both
  ends included: a reply that lands as the customer presses send crosses their message.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from acf.replay.runs import Reply, session_of
from acf.replay.sources import ChatLine
from acf.replay.typing_model import Stretch

TALK_MARGIN_MS = 2000
"""A reply less than this before the customer's next message talked over them."""


def arrivals(lines: Iterable[ChatLine]) -> dict[str, list[int]]:
    """Each session's message times in order: entry ``seq - 1`` is message ``seq``'s."""
    times: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        times[session_of(line)].append(line.at_ms)
    return dict(times)


def talked_over(sent_at_ms: int, next_at_ms: int | None, margin_ms: int = TALK_MARGIN_MS) -> bool:
    """Strict: delivered after the next message arrived or less than ``margin_ms`` before it
    (``next_at_ms`` None: the reply answered the session's last message)."""
    return next_at_ms is not None and sent_at_ms > next_at_ms - margin_ms


class SessionTyping:
    """One session's typing stretches, indexed once so that each reply is looked up in
    logarithmic time. The typing model composes a session's messages one after the other:
    ordered by ``seq``, each stretch starts at or after the previous one's send."""

    def __init__(self, stretches: Iterable[Stretch]) -> None:
        self._stretches = sorted(stretches, key=lambda s: s.seq)
        for before, after in zip(self._stretches, self._stretches[1:], strict=False):
            if after.start_ms < before.end_ms:
                raise ValueError(f"typing stretches overlap: {before} and {after}")
        self._seqs = [s.seq for s in self._stretches]
        self._starts = [s.start_ms for s in self._stretches]

    def during(self, sent_at_ms: int, to_seq: int) -> bool:
        """Whether a reply to messages up to ``to_seq``, delivered at ``sent_at_ms``, lands
        inside the stretch of a later message."""
        later = bisect_right(self._seqs, to_seq)
        # the last stretch (of a later message) started by then: the only one that can hold
        # the instant, the stretches being one after the other
        last = bisect_right(self._starts, sent_at_ms, lo=later) - 1
        return last >= later and sent_at_ms <= self._stretches[last].end_ms


def during_typing(sent_at_ms: int, to_seq: int, stretches: Sequence[Stretch]) -> bool:
    """Delivered inside a typing stretch of a later message (``stretches`` of the reply's
    session). For many replies, index the stretches once with ``SessionTyping``."""
    return SessionTyping(stretches).during(sent_at_ms, to_seq)


def count_talked_over(
    replies: Iterable[Reply], times: Mapping[str, Sequence[int]], margin_ms: int = TALK_MARGIN_MS
) -> int:
    """Replies that talked over the customer (strict); ``times`` from ``arrivals``."""
    count = 0
    for reply in replies:
        mine = times.get(reply.session, ())
        following = mine[reply.to_seq] if reply.to_seq < len(mine) else None
        count += talked_over(reply.sent_at_ms, following, margin_ms)
    return count


def count_during_typing(replies: Iterable[Reply], stretches: Iterable[Stretch]) -> int:
    """Replies delivered while their customer was typing a later message."""
    by_session: dict[str, list[Stretch]] = defaultdict(list)
    for stretch in stretches:
        by_session[stretch.session].append(stretch)
    indexed = {session: SessionTyping(mine) for session, mine in by_session.items()}
    return sum(
        indexed[r.session].during(r.sent_at_ms, r.to_seq) for r in replies if r.session in indexed
    )
