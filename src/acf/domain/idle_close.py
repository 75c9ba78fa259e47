"""When an idle session may close (DESIGN §15): a pure decision, table-tested.

A session is idle since its last activity: the session row's ``updated_at_ms``, which moves
with every accepted message, every committed turn (its consumed range, its state patch)
and every flag change. A delivery is not activity (the relay works outside the session),
but a reply still on its way holds the close.

It may close when it has been idle for at least its channel's ``idle_timeout_s`` and
nothing is left to do or to wait for:

- no unconsumed message and no live (ACCUMULATING or RUNNING) turn — a running turn at the
  timeout delays the close until it has committed, and its commit is new activity, so the
  timeout starts again from there;
- no undelivered reply, and no dead-letter replay that was requested and has not run;
- no pending confirmation that is still within its own timeout (``expires_at_ms``): the
  customer may still say yes to it. Once it expired it can never execute (DESIGN §3 inv.
  10), so it holds nothing.

A question the agent awaits (``meta.awaiting_answer``, or an external agent service's
ASK_USER) does not hold the session: it has no deadline of its own in the session, and a
customer who answers after the idle timeout starts a new conversation (an agent service's
own ``ask_user_timeout_s``, 5 minutes by default, expires it long before).
"""

from dataclasses import dataclass
from enum import StrEnum


class Hold(StrEnum):
    """Why a session does not close now."""

    CLOSED = "closed"
    """It is closed already."""
    LIVE_TURN = "live_turn"
    UNCONSUMED = "unconsumed"
    REPLAY = "replay"
    """A dead letter's requested replay has not run."""
    UNDELIVERED = "undelivered"
    NOT_IDLE = "not_idle"
    """Its idle time is below its channel's timeout."""
    CONFIRMATION = "confirmation"
    """A pending confirmation has not expired."""


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """What the decision reads about one session, from the store."""

    open: bool
    last_activity_ms: int
    """The session row's ``updated_at_ms``."""
    unconsumed: bool
    live_turn: bool
    undelivered: bool = False
    replay_pending: bool = False
    confirmation_expires_at_ms: int | None = None
    """The pending confirmation's ``expires_at_ms``, if one is pending."""


@dataclass(frozen=True, slots=True)
class CloseDecision:
    close: bool
    hold: Hold | None
    """Why not (None when it closes)."""
    idle_since_ms: int
    due_at_ms: int | None
    """When time alone no longer holds it (the later of the idle timeout and the pending
    confirmation's expiry); None when something other than time holds it."""


def decide_close(activity: SessionActivity, timeout_ms: int, now_ms: int) -> CloseDecision:
    """Whether the session closes at ``now_ms`` given its channel's ``timeout_ms``."""
    since = activity.last_activity_ms
    if not activity.open:
        return CloseDecision(False, Hold.CLOSED, since, None)
    for held, hold in (
        (activity.live_turn, Hold.LIVE_TURN),
        (activity.unconsumed, Hold.UNCONSUMED),
        (activity.replay_pending, Hold.REPLAY),
        (activity.undelivered, Hold.UNDELIVERED),
    ):
        if held:
            return CloseDecision(False, hold, since, None)
    idle_due = since + timeout_ms
    expires = activity.confirmation_expires_at_ms
    due = idle_due if expires is None else max(idle_due, expires)
    if now_ms < idle_due:
        return CloseDecision(False, Hold.NOT_IDLE, since, due)
    if expires is not None and now_ms < expires:
        return CloseDecision(False, Hold.CONFIRMATION, since, due)
    return CloseDecision(True, None, since, None)
