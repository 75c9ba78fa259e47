"""Hold-while-typing: whether a ready reply waits while the customer types, until when, and
why the wait ended (issue 23; DESIGN §5-§6). Pure: the waiting itself is
``service.typing_hold``.

A reply that is ready while the customer is composing their next message would land in
the middle of it (the customer "talked over"). So, on a channel with typing signals and a
``typing_hold_ms`` > 0, a turn whose pipeline FINISHED with something to send keeps its
result in the RUNNING turn, before the commit (never after: nothing committed is withdrawn,
DESIGN §3 invariants 5 and 6), while the customer types:

- ``holds``: hold at all? Only with a reply to send, not on a REPLAY turn nor on an OFF
  channel, not when the commit would be refused anyway (unseen messages it may not commit
  over: it supersedes at once instead), not when the turn's drafts are already shown (the
  customer has read the reply as it was written: holding it back would change nothing),
  and only if the customer types now: the latest signal is a start, younger than
  ``typing_grace_ms`` (the web chat repeats it every 2 s while typing goes on), and not
  older than the newest message (that typing was the message's own).
- ``while_held``: hold on (and look again at ``Holding.until_ms``) or release:
  ``min_window_ms`` after a "typing stopped" signal (``STOPPED``: a client may post its
  stop just before the message it sends, so the reply leaves room for a message in flight,
  as a window does after a stop), no start for ``typing_grace_ms`` (``STALE``),
  ``typing_hold_ms`` since the hold began (``CAP``). The hold began when the turn was
  first held: a re-run of the turn (after a crash, a lease loss or a retry) holds on from
  its first ``turn.held``, so the cap bounds the customer's wait however often the turn ran.

The two other endings are news the service hears: a new message (``MESSAGE``: the turn's
usual supersede decision, ``turn_steps.after_commit_refused``, as for a finished turn that
finds unseen messages) and the session leaving agent mode (``MODE``).
"""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.accumulation import Typing
from acf.domain.policy import AccumulationMode, ChannelPolicy


class HoldEnd(StrEnum):
    """Why a typing hold ended (``turn.hold_ended``'s ``ended``)."""

    STOPPED = "stopped"
    """The customer's client said typing stopped (sent, or the draft was left)."""
    STALE = "stale"
    """No "typing started" for ``typing_grace_ms``: the signal timed out."""
    CAP = "cap"
    """The hold lasted ``typing_hold_ms``: the reply goes out however long they type."""
    MESSAGE = "message"
    """A new message arrived: the turn's supersede decision applies."""
    MODE = "mode"
    """The session left agent mode (a handoff, a cool-down, a block)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """Keep the reply held; look again at ``until_ms`` (unless news comes first)."""

    until_ms: int


def latest(*signals: Typing | None) -> Typing | None:
    """The newest of ``signals`` (None when there is none); the first of equals wins."""
    found: Typing | None = None
    for signal in signals:
        if signal is not None and (found is None or signal.at_ms > found.at_ms):
            found = signal
    return found


def is_typing(policy: ChannelPolicy, typing: Typing | None, now_ms: int) -> bool:
    """The customer types now: the latest signal is a start younger than the grace."""
    return typing is not None and typing.active and now_ms < typing.at_ms + policy.typing_grace_ms


def holds(
    policy: ChannelPolicy,
    typing: Typing | None,
    now_ms: int,
    *,
    replies: int,
    newest_message_ms: int | None,
    replay: bool = False,
    doomed: bool = False,
    drafted: bool = False,
) -> bool:
    """Whether a finished turn holds its reply now.

    ``replies``: the segments it would send; ``newest_message_ms``: when the session's
    newest message arrived (typing before it was that message's own), None when the turn
    has none; ``replay``: a REPLAY turn (a person asked for it; nobody is typing it);
    ``doomed``: the session holds messages the commit may not go over, so the turn
    supersedes at once rather than wait; ``drafted``: the turn's drafts are shown (the
    customer saw the reply being written).
    """
    if (
        policy.mode is AccumulationMode.OFF
        or policy.typing_hold_ms <= 0
        or replies <= 0
        or replay
        or doomed
        or drafted
        or typing is None
    ):
        return False
    if newest_message_ms is not None and typing.at_ms < newest_message_ms:
        return False
    return is_typing(policy, typing, now_ms)


def while_held(
    policy: ChannelPolicy, typing: Typing | None, held_since_ms: int, now_ms: int
) -> Holding | HoldEnd:
    """Hold on until ``Holding.until_ms``, or why the hold ends now (``STOPPED``,
    ``STALE``, ``CAP``). ``typing``: the latest signal (the one that started the hold, or
    a newer one); ``held_since_ms``: when the turn was first held (the cap counts from
    there). A stop ends the hold ``min_window_ms`` after it; when the cap comes first, the
    cap ends it."""
    cap_at = held_since_ms + policy.typing_hold_ms
    if typing is not None and not typing.active:
        end_at, end = typing.at_ms + policy.min_window_ms, HoldEnd.STOPPED
    else:
        end_at = held_since_ms if typing is None else typing.at_ms + policy.typing_grace_ms
        end = HoldEnd.STALE
    if end_at >= cap_at:
        end_at, end = cap_at, HoldEnd.CAP
    if now_ms >= end_at:
        return end
    return Holding(end_at)
