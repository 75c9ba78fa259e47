"""The replay's model of a customer typing: when each message was composed, and the typing
signals the web chat would have sent meanwhile. The model is frozen: its constants come from
published measurements of people typing and reading, and are never tuned against acf's rules.

**When typing starts.** Before writing, a customer reads the conversation's previous message
(whoever sent it): typing can start ``react_ms`` after it, plus its reading time
``len(text) / read_cps`` when someone else wrote it (one's own last fragment is not re-read).
So typing never starts before the sender's own previous message. The first message of a
conversation has no such bound.

**How long it lasts.** ``len(text) / cps`` of keystrokes, plus composing pauses: after each
word (a space), a pause follows with chance ``pause_chance``, lasting a log-normal time (median
``pause_median_ms``, shape ``pause_sigma``, at most ``pause_cap_ms``). The pauses are drawn
from a generator seeded with the model's seed and the message's identity (conversation,
sender, time, text), so a message gets the same pauses whatever else is replayed and in
whichever order. Typing is placed to end at the send. When the log's gap is shorter than that,
typing starts at the earliest allowed instant and the same keystrokes are played faster; when
even that instant is not before the send (a paste, a quick answer), nothing is typed.

**The signals** are those of the web chat (``entrypoints/http/static/typing.js``), keystroke by
keystroke: "started" at the first keystroke and again at a keystroke ``repeat_ms`` (2000) or
more after the last "started"; "stopped" ``idle_ms`` (1500) after the last keystroke of a longer
pause ("started" again when typing resumes); "stopped" at the send when typing was still
active, at the message's own time and delivered after the message (``chat.js`` posts it once
the message is accepted). A ``Stretch`` is one message's whole composing time: first
keystroke to send, pauses included.

**Constants and where they come from.**

- ``cps`` 5 characters per second while keys are pressed: 60 words per minute. Measured
  averages are 52 WPM (4.3 cps) on desktop keyboards (Dhakal et al., CHI 2018, 136 million
  keystrokes) and 36 WPM (3 cps) on phones (Palin et al., MobileHCI 2019); the replayed Slack
  log is desktop chat among developers. ``acf replay --typing-cps`` changes it.
- ``read_cps`` 25 characters per second: silent reading of English runs at about 240 words per
  minute (Brysbaert, 2019, a meta-analysis), some 24 characters per second.
- ``react_ms`` 1350 ms before typing anything: the Keystroke-Level Model's "mental
  preparation" operator (Card, Moran and Newell, 1980).
- ``pause_chance`` 1/8 after a word: fluent adult writers type bursts of about 7 to 12 words
  between pauses of 2 s or more (Chenoweth and Hayes, 2001).
- ``pause_median_ms`` 2000 ms, ``pause_sigma`` 0.5, ``pause_cap_ms`` 8000 ms: pause durations
  are right-skewed and commonly modelled as log-normal (Baaijen, Galbraith and de Glopper,
  2012); the median is the 2-second threshold those burst studies use. About seven pauses in
  ten outlast the web chat's 1.5 s idle time and so send "stopped", then "started" again.
- ``repeat_ms`` 2000 and ``idle_ms`` 1500: the web chat's own constants.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from acf.replay.runs import session_of
from acf.replay.sources import ChatLine


@dataclass(frozen=True, slots=True)
class TypingModel:
    cps: float = 5.0
    """Characters per second while typing (pauses come on top)."""
    seed: int = 23
    """Seeds the composing pauses, together with each message's identity."""
    read_cps: float = 25.0
    """Reading speed of the conversation's previous message, written by someone else."""
    react_ms: int = 1350
    """Mental preparation before the first keystroke, after the previous message."""
    pause_chance: float = 0.125
    """Chance of a composing pause after each word."""
    pause_median_ms: int = 2000
    pause_sigma: float = 0.5
    """Log-normal shape of a pause's duration."""
    pause_cap_ms: int = 8000
    repeat_ms: int = 2000
    """The web chat repeats "started" at a keystroke this long after the last one."""
    idle_ms: int = 1500
    """The web chat sends "stopped" this long after the last keystroke."""

    def __post_init__(self) -> None:
        if self.cps <= 0 or self.read_cps <= 0:
            raise ValueError("typing model: cps and read_cps must be positive")
        if not 0 <= self.pause_chance <= 1:
            raise ValueError("typing model: pause_chance must be between 0 and 1")
        if min(self.react_ms, self.pause_median_ms, self.pause_cap_ms) < 0 or self.pause_sigma < 0:
            raise ValueError("typing model: times and pause_sigma must not be negative")
        if self.repeat_ms <= 0 or self.idle_ms <= 0:
            raise ValueError("typing model: repeat_ms and idle_ms must be positive")


@dataclass(frozen=True, slots=True)
class Signal:
    at_ms: int
    session: str
    """``acf.replay.runs.session_of`` the typing customer."""
    active: bool
    """True: "started" (or its repetition); False: "stopped"."""


@dataclass(frozen=True, slots=True)
class Stretch:
    """The sender of session ``session`` composing its message ``seq`` (1-based, in time
    order, numbered as ``runs_of`` numbers them): first keystroke to send."""

    session: str
    seq: int
    start_ms: int
    end_ms: int
    """The send: the message's ``at_ms``."""


def synthesise(lines: Sequence[ChatLine], model: TypingModel) -> tuple[list[Signal], list[Stretch]]:
    """Typing signals (in time order; at equal times in the order of the messages they belong
    to) and composing stretches (in the order of ``lines``) for a log in time order."""
    seqs: dict[str, int] = {}
    previous: dict[str, ChatLine] = {}  # conversation -> its latest message
    timed: list[tuple[int, int, int, Signal]] = []
    stretches: list[Stretch] = []
    for index, line in enumerate(lines):
        session = session_of(line)
        seqs[session] = seq = seqs.get(session, 0) + 1
        prev = previous.get(line.conversation)
        previous[line.conversation] = line
        earliest = None if prev is None else prev.at_ms + reading_pause_ms(prev, line, model)
        keys = keystrokes(line, earliest, model)
        if not keys:
            continue
        stretches.append(Stretch(session, seq, keys[0], line.at_ms))
        for k, (at_ms, active) in enumerate(web_chat_signals(keys, line.at_ms, model)):
            timed.append((at_ms, index, k, Signal(at_ms, session, active)))
    timed.sort(key=lambda t: t[:3])
    return [signal for *_, signal in timed], stretches


def reading_pause_ms(previous: ChatLine, line: ChatLine, model: TypingModel) -> float:
    """From the conversation's previous message to the earliest keystroke of ``line``."""
    if previous.sender == line.sender:
        return float(model.react_ms)
    return model.react_ms + len(previous.text) / model.read_cps * 1000


def pauses_ms(line: ChatLine, model: TypingModel) -> list[float]:
    """The pause after each character of ``line`` (0 for most), drawn from the model's seed
    and the message's identity alone."""
    identity = (model.seed, line.conversation, line.sender, line.at_ms, line.text)
    rng = random.Random("\x1f".join(map(str, identity)))  # a string seed: stable everywhere
    mu = math.log(model.pause_median_ms) if model.pause_median_ms else -math.inf
    out = []
    for char in line.text:
        pause = 0.0
        if char == " " and rng.random() < model.pause_chance:
            pause = min(rng.lognormvariate(mu, model.pause_sigma), model.pause_cap_ms)
        out.append(pause)
    return out


def keystrokes(line: ChatLine, earliest: float | None, model: TypingModel) -> list[int]:
    """When each character of ``line`` is typed (ms, rounded), ending one keystroke before
    its send and starting no earlier than ``earliest``; empty when nothing is typed."""
    step = 1000 / model.cps
    offsets = []
    t = 0.0
    for pause in pauses_ms(line, model):
        offsets.append(t)
        t += step + pause
    if not offsets:
        return []
    start = line.at_ms - t
    scale = 1.0
    if earliest is not None and start < earliest:
        if earliest >= line.at_ms:
            return []  # no time to type it: pasted, or a quick answer
        start = earliest
        scale = (line.at_ms - earliest) / t
    return [min(round(start + offset * scale), line.at_ms - 1) for offset in offsets]


def web_chat_signals(
    keys: Sequence[int], send_ms: int, model: TypingModel
) -> list[tuple[int, bool]]:
    """What ``typing.js`` sends for keystrokes at ``keys`` and a send at ``send_ms``:
    (time, active) pairs in time order."""
    out: list[tuple[int, bool]] = []
    active = False
    sent_at = 0
    last = keys[0] if keys else send_ms
    for at in keys:
        if active and at - last > model.idle_ms:
            out.append((last + model.idle_ms, False))
            active = False
        if not active or at - sent_at >= model.repeat_ms:
            out.append((at, True))
            active, sent_at = True, at
        last = at
    if active and send_ms - last > model.idle_ms:
        out.append((last + model.idle_ms, False))
        active = False
    if active:
        out.append((send_ms, False))
    return out
