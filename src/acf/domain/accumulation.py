"""When does an accumulation window close? The pure rule of DESIGN §5.

``decide`` looks at the window's messages, the latest typing signal, whether a confirmation
is pending or the agent awaits an answer to its question, the customer's pace
(``acf.domain.pace``) and the channel policy, and returns the instant the window closes
with the reason. It is called again on every new message or signal; the runtime persists
the result as the window's ``close_at`` timer. A ``close_at_ms`` at or before ``now_ms``
means "close now".

The text rules are fitted to real chat timing (``python -m acf.replay.fragments`` on the
Slack log's fit half): a message's *shape* (``text_shapes.shape_of``) says how likely the
same sender's next fragment is.

- An **acknowledgement** ("ok", "thx", "jaja", "👍", ":D") or a **complete** sentence (``?``
  ``.`` ``!``, or an emoji at the end) is rarely followed within seconds (acknowledgements:
  none of 260 within 1 s): the window closes after ``min_window_ms``.
- Text that **ends unfinished** (``,`` ``:`` ``;`` ``-``, or a trailing conjunction or
  article after another word), emoji aside, is followed far more often (15 % within 3 s,
  plain text 1.1 %): the window waits ``incomplete_window_ms`` (0: ``window_ms``).
- A **greeting** alone ("hi", "hola", "bom dia") was never followed within 6 s (the question
  after it takes longer to type): it gets the plain window, not a longer one.
- An ellipsis trails off rather than announcing more (none of 72 plain texts ending in one
  was followed within 4 s): plain window.
- Anything else gets ``window_ms``, or the customer's own pace when ``policy.pace`` is on
  and enough of their gaps are known (``CloseReason.PACE``).

Short texts are not lengthened for being short: most of them are acknowledgements.

Typing (web chat: "started" repeated every 2 s while the customer types, "stopped" after
1.5 s without a keystroke or when the box is emptied, and "stopped" right after each send):

- The latest signal counts only if it came at or after the window's last message.
- "started" holds the window until ``typing_grace_ms`` after it, within the cap: each
  repeat moves the hold on, so it ends ``typing_grace_ms`` after the *last* signal.
- "stopped" less than ``SEND_STOP_MS`` after the last message is the send's own stop (the
  box was emptied by sending): it says the customer is not typing *yet*, which is what the
  text rule already assumes (a next fragment rarely follows at once: it has to be typed),
  and a next fragment announces itself with a new "started". So it changes nothing: the
  text rule stands. A real idle stop comes at least 1.5 s after a keystroke typed after
  the send.
- Any other "stopped" means the customer paused or gave up: the window closes
  ``min_window_ms`` after it (a short grace for a message in flight), or sooner as planned.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from acf.domain.confirmation_answers import classify_answer
from acf.domain.pace import Pace, window_for
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.text_shapes import Shape, shape_of

SEND_STOP_MS = 500
"""A "stopped" this soon after the last message is the send's own stop (see above): the
web chat posts it as the message's request returns, while a real idle stop needs a keystroke
after the send and 1.5 s of quiet."""


@dataclass(frozen=True, slots=True)
class WindowMessage:
    """What the rule needs of a message in the window."""

    received_at_ms: int
    text: str | None = None
    is_button: bool = False


@dataclass(frozen=True, slots=True)
class Typing:
    """The latest typing signal of the customer."""

    active: bool
    at_ms: int


class CloseReason(StrEnum):
    OFF = "off"
    FIXED = "fixed"
    BUTTON = "button"
    CONFIRMATION_ANSWER = "confirmation_answer"
    AWAITED_ANSWER = "awaited_answer"
    ACKNOWLEDGEMENT = "acknowledgement"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    PACE = "pace"
    DEFAULT = "default"
    TYPING = "typing"
    TYPING_STOPPED = "typing_stopped"
    CAP = "cap"


@dataclass(frozen=True, slots=True)
class WindowDecision:
    close_at_ms: int
    reason: CloseReason


def planned_window(
    policy: ChannelPolicy, shape: Shape, pace: Pace | None = None
) -> tuple[int, CloseReason]:
    """The window after a message of ``shape`` (no typing, no cap) and its reason."""
    if shape is Shape.ACKNOWLEDGEMENT:
        return policy.min_window_ms, CloseReason.ACKNOWLEDGEMENT
    if shape is Shape.COMPLETE:
        return policy.min_window_ms, CloseReason.COMPLETE
    if shape is Shape.UNFINISHED:
        return policy.unfinished_window_ms, CloseReason.INCOMPLETE
    if shape is Shape.DEFAULT and policy.pace and pace is not None:
        paced = window_for(pace, policy)
        if paced is not None:
            return paced, CloseReason.PACE
    return policy.window_ms, CloseReason.DEFAULT  # a greeting too: see the module's docstring


def decide(
    policy: ChannelPolicy,
    messages: Sequence[WindowMessage],
    typing: Typing | None,
    pending_confirmation: bool,
    now_ms: int,
    awaiting_answer: bool = False,
    pace: Pace | None = None,
) -> WindowDecision:
    """The window's close instant. ``messages`` must not be empty, oldest first.
    ``awaiting_answer``: the last reply asked a question the agent waits for (an agent
    service's ASK_USER), so the customer's next message is its answer: the window closes.
    ``pace``: the customer's learned gaps, used for default-shaped text when
    ``policy.pace`` is on."""
    if not messages:
        raise ValueError("a window has at least one message")
    last = messages[-1]
    if policy.mode is AccumulationMode.OFF:
        return WindowDecision(last.received_at_ms, CloseReason.OFF)
    cap = messages[0].received_at_ms + policy.max_window_ms
    if policy.mode is AccumulationMode.FIXED:
        return _capped(last.received_at_ms + policy.window_ms, CloseReason.FIXED, cap)

    if last.is_button:
        return WindowDecision(last.received_at_ms, CloseReason.BUTTON)
    if awaiting_answer:
        return WindowDecision(last.received_at_ms, CloseReason.AWAITED_ANSWER)
    if (
        pending_confirmation
        and len(messages) == 1
        and last.text is not None
        and classify_answer(last.text) is not None
    ):
        return WindowDecision(last.received_at_ms, CloseReason.CONFIRMATION_ANSWER)

    shape = shape_of(last.text) if last.text else Shape.DEFAULT
    window, reason = planned_window(policy, shape, pace)
    close_at = last.received_at_ms + window

    if typing is not None and typing.at_ms >= last.received_at_ms:
        if typing.active:
            # Hold while the customer types, until the last signal times out.
            held = typing.at_ms + policy.typing_grace_ms
            if held > close_at:
                close_at, reason = held, CloseReason.TYPING
        elif typing.at_ms - last.received_at_ms < SEND_STOP_MS:
            pass  # the send's own stop: the text rule stands
        elif close_at <= typing.at_ms or typing.at_ms + policy.min_window_ms < close_at:
            # Stopped typing: probably done (or deleted the draft), or about to press send.
            # Close min_window_ms after the stop: sooner than planned, or, when typing held
            # the window past its planned close, a short grace for the message in flight.
            close_at = typing.at_ms + policy.min_window_ms
            reason = CloseReason.TYPING_STOPPED
    return _capped(close_at, reason, cap)


def _capped(close_at: int, reason: CloseReason, cap: int) -> WindowDecision:
    if close_at >= cap:
        return WindowDecision(cap, CloseReason.CAP)
    return WindowDecision(close_at, reason)
