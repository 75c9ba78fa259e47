"""A customer's own pace: how long *they* take between two fragments of one thought, learned
online, so the adaptive window can wait as long as this customer needs (issue 23).

Which gaps count (``observe``): the gap between two consecutive messages of the customer
when no reply of the agent was committed between their arrivals, and only up to a cap (the
channel's ``max_window_ms``).

- *No reply between*: after a reply the customer reads and answers it; that gap measures
  the conversation, not how they split a thought. The agent's turns see the customer's
  messages in order, and each commit that sends a reply records when (``replied_at_ms``; a
  commit with nothing to send, one that expects more input say, keeps the previous reply's
  time); a pair that straddles the last reply is left out. Replies of a failed turn or of
  an operator are not seen; the cap leaves out most gaps across them (reading and
  answering takes longer).
- *Up to the cap*: a longer gap is a new thought, or one no window could bridge (the window
  ends at ``max_window_ms`` from its first message); clipping it to the cap instead would
  drag the estimate to the cap for customers a window cannot help.

Messages merged by one window are such pairs, and so are the fragments a supersede folded
into the turn while its pipeline ran: exactly the gaps a window should have covered. Gaps
longer than the window plus the pipeline's time are not seen (the reply came between), so
the estimate leans short: it never lengthens a window for gaps it could not observe.

The estimate is the smoothed gap and the smoothed mean deviation, as TCP smooths round-trip
times (RFC 6298): ``gap += GAIN * (g - gap)``, ``spread += GAIN * (|g - gap| - spread)``, the
first sample giving ``gap = g``, ``spread = g / 2``. ``window_for`` is ``gap + SPREAD_FACTOR *
spread``, within ``min_window_ms..max_window_ms``: for gaps spread like a normal
distribution, the mean plus twice the mean deviation covers about 95 % of them.

It lives in the session's state under ``meta.pace`` (``to_state`` / ``from_state``), written
by the unit that commits an agent turn (``pace_patch``); a new session starts without one.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.policy import ChannelPolicy

GAIN = 0.25
"""The weight of a new gap: a few fragments are enough to follow a customer."""
SPREAD_FACTOR = 2.0
MIN_SAMPLES = 3
"""Gaps needed before the pace sets the window (fewer: the channel's ``window_ms``)."""


@dataclass(frozen=True, slots=True)
class Pace:
    samples: int = 0
    """Gaps counted so far."""
    gap_ms: float = 0.0
    """The smoothed gap between two fragments."""
    spread_ms: float = 0.0
    """The smoothed deviation of a gap from ``gap_ms``."""
    last_at_ms: int | None = None
    """When the last message the agent's turns saw arrived."""
    replied_at_ms: int | None = None
    """When the agent's last reply was committed."""


def observe(
    pace: Pace | None, received_at_ms: Sequence[int], replied_at_ms: int | None, cap_ms: int
) -> Pace:
    """``pace`` after a committed turn over messages received at ``received_at_ms`` (in
    order), replying at ``replied_at_ms`` (None: it sent nothing, the last reply stays the
    one before): each gap that counts (see the module's docstring), the gap from the
    previous turn's last message included, moves the estimate."""
    current = pace or Pace()
    previous, reply = current.last_at_ms, current.replied_at_ms
    for at in received_at_ms:
        if previous is not None:
            gap = at - previous
            straddles = reply is not None and previous < reply <= at
            if 0 <= gap <= cap_ms and not straddles:
                current = _sample(current, gap)
        previous = at
    replied = reply if replied_at_ms is None else replied_at_ms
    return Pace(current.samples, current.gap_ms, current.spread_ms, previous, replied)


def _sample(pace: Pace, gap: int) -> Pace:
    if pace.samples == 0:
        return Pace(1, float(gap), gap / 2)
    spread = pace.spread_ms + GAIN * (abs(gap - pace.gap_ms) - pace.spread_ms)
    smoothed = pace.gap_ms + GAIN * (gap - pace.gap_ms)
    return Pace(pace.samples + 1, smoothed, spread)


def window_for(pace: Pace, policy: ChannelPolicy) -> int | None:
    """The window after a default-shaped text for a customer of ``pace``, within the
    policy's ``min_window_ms..max_window_ms``; ``None`` with fewer than ``MIN_SAMPLES``."""
    if pace.samples < MIN_SAMPLES:
        return None
    wanted = round(pace.gap_ms + SPREAD_FACTOR * pace.spread_ms)
    return max(policy.min_window_ms, min(policy.max_window_ms, wanted))


def to_state(pace: Pace) -> dict[str, Any]:
    """``pace`` as ``meta.pace`` stores it (every key present, so a merge patch of it
    replaces the stored value)."""
    return {
        "samples": pace.samples,
        "gap_ms": round(pace.gap_ms, 1),
        "spread_ms": round(pace.spread_ms, 1),
        "last_at_ms": pace.last_at_ms,
        "replied_at_ms": pace.replied_at_ms,
    }


def from_state(value: object) -> Pace | None:
    """The pace stored in ``meta.pace``; ``None`` when absent or not a pace."""
    if not isinstance(value, Mapping):
        return None
    try:
        return Pace(
            int(value["samples"]),
            float(value["gap_ms"]),
            float(value["spread_ms"]),
            _optional_int(value.get("last_at_ms")),
            _optional_int(value.get("replied_at_ms")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a time: {value!r}")
    return int(value)


def pace_patch(
    meta: Mapping[str, Any],
    policy: ChannelPolicy,
    received_at_ms: Sequence[int],
    replied_at_ms: int | None,
) -> dict[str, Any] | None:
    """The state patch a committed agent turn adds for the customer's pace (``meta`` is
    the state's ``meta`` as the turn read it; ``replied_at_ms`` None: the turn sent no
    reply); ``None`` when ``policy.pace`` is off or the stored pace would not change."""
    if not policy.pace:
        return None
    stored = meta.get("pace")
    learned = to_state(
        observe(from_state(stored), received_at_ms, replied_at_ms, policy.max_window_ms)
    )
    if learned == stored:
        return None
    return {"meta": {"pace": learned}}
