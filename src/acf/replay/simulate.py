"""Play a chat log through the real embedded runtime on the virtual clock, per strategy.

Each (conversation, sender) is one customer session; its messages arrive at their real
times; the pipeline takes ``latency_ms`` and replies once per turn. Strategies differ only
in their channel policy and supersede decision, so they share every other mechanism:

- ``acf adaptive``: the channel's adaptive policy (DESIGN §5) and SUPERSEDE, with typing
  signals when a typing speed is given;
- ``fixed N s``: a plain debounce (close N s after the last message) that never cancels;
- ``naive``: every message is answered on its own.

With a ``TokenModel`` the pipeline is a metered streaming generation instead of a plain
pause (``acf.replay.tokens``): the measure then says what each strategy paid in tokens.
"""

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from acf.adapters.sqlite.database import Durability
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.domain.supersede import SupersedeDecision
from acf.ports.session_store import SessionFilter
from acf.replay.runs import Measure, Reply, measure, runs_of, session_of
from acf.replay.sources import ChatLine
from acf.replay.tokens import MeteredGeneration, TokenModel
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    policy: ChannelPolicy
    supersede: SupersedeDecision
    typing: bool = False


def fixed(seconds: float) -> Strategy:
    window = int(seconds * 1000)
    policy = ChannelPolicy(AccumulationMode.FIXED, window, 0, window * 10, 0)
    return Strategy(f"fixed {seconds:g} s", policy, SupersedeDecision.QUEUE)


def default_strategies(channel: Channel, typing: bool) -> list[Strategy]:
    return [
        Strategy(
            "acf adaptive", DEFAULT_CHANNEL_POLICIES[channel], SupersedeDecision.SUPERSEDE, typing
        ),
        fixed(1.5),
        fixed(1.2),
        Strategy("naive", ChannelPolicy(AccumulationMode.OFF), SupersedeDecision.QUEUE),
    ]


@dataclass(frozen=True, slots=True)
class _Event:
    at_ms: int
    order: int
    line: ChatLine
    typing: bool


def _events(lines: Sequence[ChatLine], typing_cps: float) -> list[_Event]:
    """Messages, and, with a typing speed, a typing start before each message: as long
    before it as typing its text takes, but not before the sender's previous message."""
    events: list[_Event] = []
    previous: dict[str, int] = {}
    for order, line in enumerate(lines):
        session = session_of(line)
        if typing_cps > 0:
            start = line.at_ms - int(len(line.text) / typing_cps * 1000)
            start = max(start, previous.get(session, start - 1) + 1)
            if start < line.at_ms:
                events.append(_Event(start, order * 2, line, True))
        events.append(_Event(line.at_ms, order * 2 + 1, line, False))
        previous[session] = line.at_ms
    return sorted(events, key=lambda e: (e.at_ms, e.order))


async def simulate(
    lines: Sequence[ChatLine],
    strategy: Strategy,
    latency_ms: int,
    channel: Channel,
    typing_cps: float = 0.0,
    progress: Callable[[int], None] | None = None,
    tokens: TokenModel | None = None,
) -> Measure:
    """``latency_ms`` is ignored with ``tokens`` (a generation takes its model's time)."""
    settings = AgentSettings(
        supersede=strategy.supersede, channel_policies={channel: strategy.policy}
    )
    metered = None if tokens is None else MeteredGeneration(tokens)
    if tokens is not None:
        latency_ms = tokens.latency_ms
    options = HarnessOptions(
        script=Script(steps=({"sleep": latency_ms},) if latency_ms else ()),
        settings=settings,
        pipeline=metered,
        durability=Durability.NORMAL,  # a simulation: speed over power-loss safety
    )
    with tempfile.TemporaryDirectory(prefix="acf-replay-") as tmp:
        async with Harness(Path(tmp), options) as h:
            start = lines[0].at_ms if lines else 0
            origin = h.clock.now_ms()
            events = _events(lines, typing_cps if strategy.typing else 0.0)
            for n, event in enumerate(events):
                await h.advance(max(0, origin + event.at_ms - start - h.clock.now_ms()))
                customer = session_of(event.line)
                if event.typing:
                    await h.typing(customer, True, channel)
                else:
                    await h.send(customer, event.line.text or "(empty)", channel)
                if progress is not None and n % 500 == 0:
                    progress(n)
            await h.run_until_idle(limit_ms=24 * 3600 * 1000)
            replies = await _replies(h, origin - start)
    result = measure(strategy.name, runs_of(lines), replies, latency_ms)
    if metered is None:
        return result
    return dataclasses.replace(result, tokens=metered.tally)


async def _replies(h: Harness, offset_ms: int) -> list[Reply]:
    """Each committed turn's reply, with when the channel first accepted it (log time)."""
    first_sent: dict[int, int] = {}
    for sent in h.channel.sends:
        first_sent.setdefault(sent.outbox_id, sent.at_ms)
    replies = []
    for session in await h.store.sessions.list_sessions(TENANT, SessionFilter(limit=10_000_000)):
        turns = {t.turn_id: t for t in await h.store.turns.list_turns(TENANT, session.session_id)}
        for row in await h.store.outbox.for_session(TENANT, session.session_id):
            turn = turns[row.turn_id]
            if row.outbox_id in first_sent:
                replies.append(
                    Reply(
                        session.key.customer,
                        turn.from_seq,
                        turn.to_seq,
                        first_sent[row.outbox_id] - offset_ms,
                    )
                )
    return replies
