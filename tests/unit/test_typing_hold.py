"""Table tests of hold-while-typing's decisions (``domain.typing_hold``): whether a ready
reply is held, until when, and why the hold ends."""

import pytest

from acf.domain.accumulation import Typing
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.typing_hold import HoldEnd, Holding, holds, is_typing, latest, while_held

P = ChannelPolicy(AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000, typing_hold_ms=8000)
OFF_HOLD = ChannelPolicy(AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000)
OFF = ChannelPolicy(AccumulationMode.OFF, typing_hold_ms=8000)
FIXED = ChannelPolicy(AccumulationMode.FIXED, 600, 250, 3000, 4000, typing_hold_ms=8000)
NOW = 10_000
TYPING = Typing(True, NOW - 1000)

HOLDS = [
    ("typing now, a reply ready: hold", P, TYPING, {}, True),
    ("a fixed window's channel holds too", FIXED, TYPING, {}, True),
    ("typing_hold_ms 0: never", OFF_HOLD, TYPING, {}, False),
    ("accumulation OFF: never", OFF, TYPING, {}, False),
    ("nothing to send: never", P, TYPING, {"replies": 0}, False),
    ("a REPLAY turn: never", P, TYPING, {"replay": True}, False),
    ("the commit would supersede anyway: no wait", P, TYPING, {"doomed": True}, False),
    ("its drafts are shown: the customer saw the reply", P, TYPING, {"drafted": True}, False),
    ("no drafts shown: hold", P, TYPING, {"drafted": False}, True),
    ("no signal ever: no hold", P, None, {}, False),
    ("typing stopped: no hold", P, Typing(False, NOW - 100), {}, False),
    ("started just now: hold", P, Typing(True, NOW), {}, True),
    ("started a grace ago: stale, no hold", P, Typing(True, NOW - 4000), {}, False),
    ("started just within the grace: hold", P, Typing(True, NOW - 3999), {}, True),
    (
        "typing before the newest message was that message's own",
        P,
        Typing(True, NOW - 1000),
        {"newest_message_ms": NOW - 999},
        False,
    ),
    (
        "typing as the newest message arrived counts",
        P,
        Typing(True, NOW - 1000),
        {"newest_message_ms": NOW - 1000},
        True,
    ),
]


@pytest.mark.parametrize(
    ("policy", "typing", "given", "expected"),
    [row[1:] for row in HOLDS],
    ids=[row[0] for row in HOLDS],
)
def test_holds(
    policy: ChannelPolicy, typing: Typing | None, given: dict[str, object], expected: bool
) -> None:
    facts: dict[str, object] = {"replies": 1, "newest_message_ms": NOW - 5000, **given}
    assert holds(policy, typing, NOW, **facts) is expected  # type: ignore[arg-type]


BEGAN = 10_000
WHILE_HELD = [
    (
        "typing goes on: look again when it would go stale",
        Typing(True, 10_000),
        10_500,
        Holding(14_000),
    ),
    ("a newer start moves the look", Typing(True, 12_000), 12_000, Holding(16_000)),
    ("near the cap: look again at the cap", Typing(True, 16_000), 16_500, Holding(18_000)),
    # a stop ends it min_window_ms (250) later: room for the message posted after it
    ("a stop: hold on for a message in flight", Typing(False, 11_000), 11_000, Holding(11_250)),
    ("just before the stop's grace ends", Typing(False, 11_000), 11_249, Holding(11_250)),
    ("the stop's grace over: stopped", Typing(False, 11_000), 11_250, HoldEnd.STOPPED),
    ("read late after a stop: stopped", Typing(False, 11_000), 13_000, HoldEnd.STOPPED),
    ("a stop near the cap: look again at the cap", Typing(False, 17_900), 17_900, Holding(18_000)),
    ("a stop near the cap: the cap ends it", Typing(False, 17_900), 18_000, HoldEnd.CAP),
    ("a stop read after the cap: the cap ended it", Typing(False, 18_000), 18_100, HoldEnd.CAP),
    ("no start for the grace: stale", Typing(True, 10_000), 14_000, HoldEnd.STALE),
    (
        "stale later than planned (read late): still stale",
        Typing(True, 10_000),
        15_000,
        HoldEnd.STALE,
    ),
    ("typing on at the cap: the cap", Typing(True, 16_000), 18_000, HoldEnd.CAP),
    ("stale exactly at the cap: the cap", Typing(True, 14_000), 18_000, HoldEnd.CAP),
    ("the signal gone (a new process): stale", None, 10_000, HoldEnd.STALE),
    # a re-run holds on from the turn's first hold (BEGAN): the cap counts from there
    ("a re-run within the cap: hold on", Typing(True, 15_000), 15_500, Holding(18_000)),
    ("a re-run past the first hold's cap: the cap", Typing(True, 24_000), 25_000, HoldEnd.CAP),
]


@pytest.mark.parametrize(
    ("typing", "now", "expected"),
    [row[1:] for row in WHILE_HELD],
    ids=[row[0] for row in WHILE_HELD],
)
def test_while_held(typing: Typing | None, now: int, expected: Holding | HoldEnd) -> None:
    assert while_held(P, typing, BEGAN, now) == expected


def test_is_typing_needs_an_active_fresh_signal() -> None:
    assert is_typing(P, Typing(True, NOW - 3999), NOW)
    assert not is_typing(P, Typing(True, NOW - 4000), NOW)
    assert not is_typing(P, Typing(False, NOW), NOW)
    assert not is_typing(P, None, NOW)


def test_latest_is_the_newest_signal_wherever_it_was_read() -> None:
    memory, stored = Typing(True, 5), Typing(False, 7)
    assert latest(memory, stored) == stored
    assert latest(stored, memory) == stored
    assert latest(None, memory) == memory
    assert latest(None, None) is None
    same = Typing(False, 5)
    assert latest(memory, same) == memory  # the first of equals
