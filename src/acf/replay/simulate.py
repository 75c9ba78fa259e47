"""Play a chat log through the real embedded runtime on the virtual clock, per strategy.

Each (conversation, sender) is one customer session; its messages arrive at their real
times; the pipeline takes ``latency_ms`` and replies once per turn. Strategies differ only
in their channel policy and supersede decision, so they share every other mechanism:

- ``acf adaptive``: the channel's adaptive policy (DESIGN §5) and SUPERSEDE; it receives the
  synthesised typing signals when a typing model is given;
- ``fixed N s + supersede``: a plain debounce (close N s after the last message) with
  SUPERSEDE: what a fixed window gains from cancelling;
- ``fixed N s``: the same debounce that never cancels (QUEUE);
- ``naive``: every message is answered on its own.

With a typing model, its typing stretches are measured against every strategy (a strategy
that ignores typing still talks over a customer who is typing); only strategies with
``typing`` receive the signals. With a ``TokenModel`` the pipeline is a metered streaming
generation instead of a plain pause (``acf.replay.tokens``). Either pipeline reports its
runs to a ``PipelineMeter``, from which the superseded work is counted (``acf.replay.meter``).

Virtual time is cheap but not free: every periodic sweep of the runtime (idle close, mode
watch) is a stop of the clock. A pause in the log longer than ``GAP_MS`` during which the
runtime has nothing to do is therefore shortened to ``GAP_MS``: nothing but those sweeps
happens in it. Reply times are mapped back to the log's own time. A consequence: a session
closes for idleness (24 h) only over the shortened time.
"""

import dataclasses
import os
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from acf.adapters.sqlite.database import Durability
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.domain.supersede import SupersedeDecision
from acf.domain.turns import TurnPhase
from acf.ports.pipeline import Pipeline
from acf.ports.session_store import SessionFilter
from acf.replay import talk
from acf.replay.meter import MeteredPause, PipelineMeter, waste
from acf.replay.runs import Measure, Reply, measure, runs_of, session_of
from acf.replay.sources import ChatLine
from acf.replay.tokens import MeteredGeneration, TokenModel
from acf.replay.typing_model import Signal, TypingModel, synthesise
from acf.testing.harness import TENANT, Harness, HarnessOptions

GAP_MS = 600_000
"""Quiet pauses of the log longer than this are shortened to it (see the module doc)."""
SCRATCH = Path("/dev/shm")
"""Where the replay's database goes when it exists: memory, not disk (a simulation)."""


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    policy: ChannelPolicy
    supersede: SupersedeDecision
    typing: bool = False
    """Receives the synthesised typing signals."""


def fixed(seconds: float, supersede: bool = False) -> Strategy:
    """Close ``seconds`` after the last message (cap ten times that); with ``supersede``,
    a message during the pipeline cancels the reply and restarts over both."""
    window = int(seconds * 1000)
    policy = ChannelPolicy(AccumulationMode.FIXED, window, 0, window * 10, 0)
    if supersede:
        return Strategy(f"fixed {seconds:g} s + supersede", policy, SupersedeDecision.SUPERSEDE)
    return Strategy(f"fixed {seconds:g} s", policy, SupersedeDecision.QUEUE)


def default_strategies(channel: Channel, typing: bool) -> list[Strategy]:
    return [
        Strategy(
            "acf adaptive", DEFAULT_CHANNEL_POLICIES[channel], SupersedeDecision.SUPERSEDE, typing
        ),
        fixed(1.5, supersede=True),
        fixed(1.5),
        fixed(1.2),
        Strategy("naive", ChannelPolicy(AccumulationMode.OFF), SupersedeDecision.QUEUE),
    ]


@dataclass(frozen=True, slots=True)
class _Event:
    """A message (``text`` set) or a typing signal (``active`` set), in log time."""

    at_ms: int
    session: str
    text: str | None = None
    active: bool = False


def events(lines: Sequence[ChatLine], signals: Sequence[Signal]) -> list[_Event]:
    """Messages and signals in time order; at equal times messages first (the "stopped"
    sent with a message follows it), each kind in its given order."""
    merged = [
        (line.at_ms, 0, n, _Event(line.at_ms, session_of(line), line.text))
        for n, line in enumerate(lines)
    ]
    merged += [
        (s.at_ms, 1, n, _Event(s.at_ms, s.session, active=s.active)) for n, s in enumerate(signals)
    ]
    merged.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in merged]


async def simulate(
    lines: Sequence[ChatLine],
    strategy: Strategy,
    latency_ms: int,
    channel: Channel,
    typing: TypingModel | None = None,
    progress: Callable[[int], None] | None = None,
    tokens: TokenModel | None = None,
) -> Measure:
    """``latency_ms`` is ignored with ``tokens`` (a generation takes its model's time);
    ``progress`` is called with the number of events played, every 500."""
    signals, stretches = synthesise(lines, typing) if typing is not None else ([], [])
    meter = PipelineMeter()
    pipeline: Pipeline
    if tokens is not None:
        latency_ms = tokens.latency_ms
        pipeline = generation = MeteredGeneration(tokens, meter)
    else:
        pipeline, generation = MeteredPause(latency_ms, meter), None
    options = HarnessOptions(
        settings=AgentSettings(
            supersede=strategy.supersede, channel_policies={channel: strategy.policy}
        ),
        pipeline=pipeline,
        durability=Durability.NORMAL,  # a simulation: speed over power-loss safety
    )
    played = events(lines, signals if strategy.typing else [])
    with tempfile.TemporaryDirectory(prefix="acf-replay-", dir=_scratch()) as tmp:
        async with Harness(Path(tmp), options) as h:
            log_time = await _play(h, played, channel, progress)
            replies, committed = await _outcome(h, log_time)
    spent = waste(meter.runs, committed)
    return measure(
        strategy.name,
        runs_of(lines),
        replies,
        latency_ms,
        talked_over=talk.count_talked_over(replies, talk.arrivals(lines)),
        talked_over_typing=(
            None if typing is None else talk.count_during_typing(replies, stretches)
        ),
        superseded_runs=spent.runs,
        wasted_ms=spent.ms,
        tokens=None if generation is None else generation.tally,
    )


def _scratch() -> Path | None:
    """``SCRATCH`` when this machine has it, else None (the default temporary directory)."""
    return SCRATCH if SCRATCH.is_dir() and os.access(SCRATCH, os.W_OK) else None


@dataclass(slots=True)
class _LogTime:
    """Maps the harness's virtual times back to the log's: the shift in force changes only
    at a shortened pause, recorded with the number of sends made before it."""

    virtual_origin_ms: int
    log_origin_ms: int
    sends_before: list[int] = dataclasses.field(default_factory=lambda: [0])
    shifts: list[int] = dataclasses.field(default_factory=lambda: [0])

    def of_send(self, index: int, virtual_ms: int) -> int:
        """The log time of the ``index``-th send of the channel, made at ``virtual_ms``."""
        shift = self.shifts[bisect_right(self.sends_before, index) - 1]
        return virtual_ms - self.virtual_origin_ms + self.log_origin_ms + shift


async def _play(
    h: Harness, played: Sequence[_Event], channel: Channel, progress: Callable[[int], None] | None
) -> _LogTime:
    """Deliver every event at its time, shortening quiet pauses; then run out the work."""
    clock = h.clock
    start = played[0].at_ms if played else 0
    log_time = _LogTime(clock.now_ms(), start)
    shift = 0
    previous = start
    for n, event in enumerate(played):
        if event.at_ms - previous > GAP_MS:
            await _advance_to(h, log_time.virtual_origin_ms + previous - start - shift + GAP_MS)
            if h.idle:  # nothing in flight: the rest of the pause is only sweeps
                shift += event.at_ms - previous - GAP_MS
                log_time.sends_before.append(len(h.channel.sends))
                log_time.shifts.append(shift)
        await _advance_to(h, log_time.virtual_origin_ms + event.at_ms - start - shift)
        previous = event.at_ms
        if event.text is not None:
            await h.send(event.session, event.text or "(empty)", channel)
        else:
            await h.typing(event.session, event.active, channel)
        if progress is not None and n % 500 == 0:
            progress(n)
    await h.run_until_idle(limit_ms=24 * 3600 * 1000)
    return log_time


async def _advance_to(h: Harness, target_ms: int) -> None:
    """``Harness.advance`` without its settling before and after: the runtime settled after
    the last event already, and moving past no due sleeper wakes nothing."""
    clock = h.clock
    while (due := clock.next_due_ms()) is not None and due <= target_ms:
        clock.advance_to(due)
        await h.settle()
    clock.advance_to(target_ms)


async def _outcome(h: Harness, log_time: _LogTime) -> tuple[list[Reply], set[str]]:
    """Each committed turn's reply (when the channel first accepted any part of it, in log
    time), and the ids of the committed turns.

    A customer whose session closed for idleness has several sessions: their message
    numbers continue from one to the next, as ``runs_of`` numbers the log."""
    first_sent: dict[int, int] = {}
    for index, sent in enumerate(h.channel.sends):
        if sent.outbox_id not in first_sent:
            first_sent[sent.outbox_id] = log_time.of_send(index, sent.at_ms)
    sessions = await h.store.sessions.list_sessions(TENANT, SessionFilter(limit=10_000_000))
    sessions.sort(key=lambda s: (s.key.customer, s.created_at_ms))
    replies: list[Reply] = []
    committed: set[str] = set()
    offsets: dict[str, int] = {}
    for session in sessions:
        customer = session.key.customer
        offset = offsets.get(customer, 0)
        offsets[customer] = offset + session.last_seq
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        committed |= {t.turn_id for t in turns if t.phase is TurnPhase.COMMITTED}
        sent_by_turn: dict[str, int] = {}
        for row in await h.store.outbox.for_session(TENANT, session.session_id):
            at = first_sent.get(row.outbox_id)
            if at is not None:
                sent_by_turn[row.turn_id] = min(at, sent_by_turn.get(row.turn_id, at))
        replies += [
            Reply(customer, t.from_seq + offset, t.to_seq + offset, sent_by_turn[t.turn_id])
            for t in turns
            if t.turn_id in sent_by_turn
        ]
    return replies, committed
