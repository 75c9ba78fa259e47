"""When does an accumulation window close? The pure rule of DESIGN §5.

``decide`` looks at the window's messages, the latest typing signal, whether a confirmation
is pending or the agent awaits an answer to its question, and the channel policy, and
returns the instant the window closes with the reason. It is called again on every new
message or signal; the runtime persists the result as the window's ``close_at`` timer. A
``close_at_ms`` at or before ``now_ms`` means "close now".
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from acf.domain.confirmation_answers import classify_answer
from acf.domain.policy import AccumulationMode, ChannelPolicy


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
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    DEFAULT = "default"
    TYPING = "typing"
    TYPING_STOPPED = "typing_stopped"
    CAP = "cap"


@dataclass(frozen=True, slots=True)
class WindowDecision:
    close_at_ms: int
    reason: CloseReason


_CONJUNCTIONS = frozenset(
    # en, es, pt, fr, de: a message ending in one of these continues in the next.
    "and or but because so then also with for to the a my "
    "y o pero porque con para el la mi "
    "e ou mas porque com para o a meu minha "
    "et ou mais parce car avec pour le la mon ma "
    "und oder aber weil mit für der die das mein meine".split()
)
_GREETINGS = frozenset(
    [
        *"hi hello hey hiya yo hola buenas oi olá ola bonjour salut coucou".split(),
        *"hallo moin servus".split(),
        *("good morning", "good afternoon", "good evening", "buenos días", "buenos dias"),
        *("bom dia", "boa tarde", "guten tag", "guten morgen"),
    ]
)
_WORD = re.compile(r"[\w']+", re.UNICODE)
SHORT_TEXT_CHARS = 4


def text_shape(text: str) -> CloseReason:
    """COMPLETE, INCOMPLETE or DEFAULT for one message's text."""
    stripped = text.strip()
    lowered = stripped.lower().rstrip("!.? ")
    if stripped.endswith(("...", "…", ",", ":", ";", "-")):
        return CloseReason.INCOMPLETE
    if lowered in _GREETINGS:
        return CloseReason.INCOMPLETE
    words = _WORD.findall(stripped.lower())
    if words and words[-1] in _CONJUNCTIONS and not stripped.endswith(("?", ".", "!")):
        return CloseReason.INCOMPLETE
    if len(stripped) <= SHORT_TEXT_CHARS and not stripped.endswith("?"):
        return CloseReason.INCOMPLETE
    if stripped.endswith(("?", ".", "!", "؟", "。")):
        return CloseReason.COMPLETE
    return CloseReason.DEFAULT


def decide(
    policy: ChannelPolicy,
    messages: Sequence[WindowMessage],
    typing: Typing | None,
    pending_confirmation: bool,
    now_ms: int,
    awaiting_answer: bool = False,
) -> WindowDecision:
    """The window's close instant. ``messages`` must not be empty, oldest first.
    ``awaiting_answer``: the last reply asked a question the agent waits for (an agent
    service's ASK_USER), so the customer's next message is its answer: the window closes."""
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

    shape = text_shape(last.text) if last.text else CloseReason.DEFAULT
    window = {
        CloseReason.COMPLETE: policy.min_window_ms,
        CloseReason.INCOMPLETE: min(policy.window_ms * 2, policy.max_window_ms),
    }.get(shape, policy.window_ms)
    close_at, reason = last.received_at_ms + window, shape

    if typing is not None and typing.at_ms >= last.received_at_ms:
        if typing.active:
            # Hold while the customer types, until the signal times out.
            close_at = max(close_at, typing.at_ms + policy.typing_grace_ms)
            reason = CloseReason.TYPING
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
