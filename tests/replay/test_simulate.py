"""The replay's measures on crafted logs, on the real runtime and the virtual clock: what a
supersede costs and saves, the typing stretches every strategy is measured against, and log
times that survive the shortening of long quiet pauses."""

import pytest

from acf.domain.channels import Channel
from acf.replay.simulate import default_strategies, events, fixed, simulate
from acf.replay.sources import ChatLine
from acf.replay.typing_model import Signal, TypingModel, synthesise
from acf.testing.harness import Harness

HOUR = 3_600_000


def correction(conv: str, t: int) -> list[ChatLine]:
    """A customer corrects themself 2.5 s after writing: a fixed 1.5 s window has closed
    and the 2 s pipeline is midway (it started at 1.5 s)."""
    return [
        ChatLine(conv, "ann", t, "I want to change my delivery address"),
        ChatLine(conv, "ann", t + 2_500, "the billing one, sorry"),
    ]


async def test_a_supersede_throws_the_run_away_instead_of_talking_over() -> None:
    lines = correction("1", 0) + correction("2", 3 * HOUR)  # far apart: the pause is shortened
    queued = await simulate(lines, fixed(1.5), 2000, Channel.WEB)
    superseding = await simulate(lines, fixed(1.5, supersede=True), 2000, Channel.WEB)
    # QUEUE: the first message's reply (at 3.5 s) lands after the correction (2.5 s), then
    # the correction gets its own reply (window to 4 s, pipeline to 6 s)
    assert (queued.replies, queued.talked_over) == (4, 2)
    assert (queued.superseded_runs, queued.wasted_ms) == (0, 0)
    assert queued.replies_per_run == 2.0 and queued.talked_over_typing is None
    # its waits, in log time across the shortened pause: 6 s - 2.5 s - 2 s pipeline
    assert queued.wait_p50_ms == queued.wait_p99_ms == 1500
    # SUPERSEDE: the run in flight is cancelled 1 s in, one reply answers both messages
    assert (superseding.replies, superseding.talked_over) == (2, 0)
    assert (superseding.superseded_runs, superseding.wasted_ms) == (2, 2 * 1000)
    assert superseding.replies_per_run == 1.0
    assert superseding.wait_p99_ms == 1500  # recomputed after the window: 2.5 + 1.5 + 2 s
    assert superseding.superseded_per_100 == 50.0
    assert superseding.wasted_s_per_100 == 50.0
    assert superseding.talked_over_per_100 == 0.0 and queued.talked_over_per_100 == 50.0


async def test_typing_stretches_measure_every_strategy_signals_or_not() -> None:
    """The second message (60 characters at 5 cps, 12 s of keystrokes) is typed from 1.35 s
    after the first (the model's reaction time) until its send at 10 s: a reply to the first
    message within those 8.65 s talks over the typing customer, but is 6.5 s or more before
    the message itself (not talked over by the strict measure)."""
    lines = [
        ChatLine("1", "ann", 0, "hi"),
        ChatLine("1", "ann", 10_000, "x" * 59 + "?"),
    ]
    model = TypingModel()
    naive = await simulate(
        lines, default_strategies(Channel.WEB, True)[-1], 2000, Channel.WEB, model
    )
    window = await simulate(lines, fixed(1.5), 2000, Channel.WEB, model)
    without = await simulate(lines, fixed(1.5), 2000, Channel.WEB)
    assert naive.strategy == "naive" and naive.replies == 2
    assert (naive.talked_over, naive.talked_over_typing) == (0, 1)
    assert (window.talked_over, window.talked_over_typing) == (0, 1)
    assert naive.talked_over_typing_per_100 == 50.0
    assert without.talked_over_typing is None and without.talked_over_typing_per_100 is None


async def test_only_a_typing_strategy_gets_the_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[tuple[str, bool]] = []
    typing = Harness.typing

    async def recording(h: Harness, customer: str, active: bool, channel: Channel) -> None:
        delivered.append((customer, active))
        await typing(h, customer, active, channel)

    monkeypatch.setattr(Harness, "typing", recording)
    lines = [ChatLine("1", "ann", 0, "hi"), ChatLine("1", "ann", 10_000, "x" * 59 + "?")]
    model = TypingModel()
    signals, _ = synthesise(lines, model)
    acf, *others = default_strategies(Channel.WEB, typing=True)
    measured = await simulate(lines, acf, 2000, Channel.WEB, model)
    assert delivered == [(s.session, s.active) for s in signals] and len(signals) > 2
    assert measured.talked_over_typing is not None
    delivered.clear()
    await simulate(lines, others[0], 2000, Channel.WEB, model)
    assert delivered == []


def test_default_strategies_in_order() -> None:
    strategies = default_strategies(Channel.WHATSAPP, typing=True)
    assert [s.name for s in strategies] == [
        "acf adaptive",
        "fixed 1.5 s + supersede",
        "fixed 1.5 s",
        "fixed 1.2 s",
        "naive",
    ]
    assert [s.typing for s in strategies] == [True, False, False, False, False]
    assert strategies[1].policy == strategies[2].policy
    assert strategies[1].supersede != strategies[2].supersede


def test_messages_come_before_signals_at_the_same_time() -> None:
    lines = [ChatLine("1", "ann", 1000, "a"), ChatLine("1", "bob", 3000, "b")]
    signals = [
        Signal(500, "1/bob", True),
        Signal(1000, "1/ann", False),  # "stopped" sent with ann's message: after it
        Signal(3000, "1/bob", False),
    ]
    played = [(e.at_ms, e.session, e.text, e.active) for e in events(lines, signals)]
    assert played == [
        (500, "1/bob", None, True),
        (1000, "1/ann", "a", False),
        (1000, "1/ann", None, False),
        (3000, "1/bob", "b", False),
        (3000, "1/bob", None, False),
    ]
