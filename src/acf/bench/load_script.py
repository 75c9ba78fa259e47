"""What one simulated customer of the load test does, and what it saw: the plan of a
conversation (drawn from a seeded ``random.Random``) and the timeline of the session's
events it read, with the figures taken from it. No I/O and no Locust here, so the
locustfile (``acf.bench.load_locustfile``) stays thin and this is tested in-process.

A conversation is a new web-chat customer (so a new session) and one or two exchanges.
An exchange is a burst of 1-3 fragments 100-400 ms apart, sometimes a correction shortly
after ("wait, I meant …"), then its reply, read from the session's event stream with
drafts (SSE, opened after the first 202 and kept for the conversation) or by polling its
events. Sometimes the customer reads the reply and asks a follow-up: a second exchange.
A delegated conversation's first fragment starts with the router's command (``/agent``);
its later messages carry none: they reach the agent service because they share the first
one's turn, or, a follow-up, because the router keeps an agent conversation on its route
(sticky).

"First visible chunk" of an exchange: from the moment its last message was accepted (its
202 was read) to the first ``reply.draft`` or ``response.delivered`` read afterwards of a
turn whose range holds that message (ranges from ``turn.started`` / ``turn.absorbed``).
The exchange ends when a ``response.delivered`` of such a turn is read.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

COMMAND = "/agent"
"""The router rule's command that sends a conversation to the agent service route."""

FRAGMENTS = (
    "hi",
    "hello, quick question",
    "my order R-{n} has not arrived",
    "it was supposed to come on monday",
    "can you check where it is?",
    "also I want to change the delivery address",
    "is there a fee for express shipping?",
    "thanks in advance",
)
FOLLOW_UPS = ("thanks!", "and how long does express take?", "ok, one more thing", "great")
CORRECTIONS = ("wait, I meant order R-{n}", "sorry, I meant the second address", "no, tuesday")
SEEN_KINDS = ("reply.draft", "response.delivered")
"""Events that show the customer something of the reply."""
FAILURE_KINDS = frozenset({"turn.failed", "response.failed"})
SETTINGS_ENV = "ACF_LOAD_SETTINGS"
"""The users' settings (``UserSettings`` as JSON), from the load test to Locust's process."""
KEY_ENV = "ACF_LOAD_API_KEY"
"""The tenant's API key, passed in the environment (never on a command line)."""


class Route(StrEnum):
    DIRECT = "direct"
    AGENT = "agent"


class Reading(StrEnum):
    STREAM = "stream"
    """``GET /v1/sessions/{id}/stream?drafts=true`` (SSE), opened after the first 202."""
    POLL = "poll"
    """``GET /v1/sessions/{id}/events?after_id=…`` every ``poll_s`` after the last 202."""


@dataclass(frozen=True, slots=True)
class Mix:
    """The shares the plans are drawn with."""

    delegated: float = 0.3
    correction: float = 0.2
    polling: float = 0.2
    followup: float = 0.3

    def __post_init__(self) -> None:
        for name in ("delegated", "correction", "polling", "followup"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1")


class UserSettings(BaseModel):
    """What every simulated customer is told (``SETTINGS_ENV``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(min_length=1)
    records: str = Field(min_length=1)
    """The JSON-lines file each conversation's ``Record`` is appended to."""
    seed: int = 0
    delegated: float = Field(default=0.3, ge=0, le=1)
    correction: float = Field(default=0.2, ge=0, le=1)
    polling: float = Field(default=0.2, ge=0, le=1)
    followup: float = Field(default=0.3, ge=0, le=1)
    wait_min_s: float = Field(default=0.5, ge=0)
    wait_max_s: float = Field(default=2.0, ge=0)
    """A customer waits this long (uniform) between two conversations."""
    poll_s: float = Field(default=0.5, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    """An exchange without its reply this long after its last message failed."""

    @property
    def mix(self) -> Mix:
        return Mix(self.delegated, self.correction, self.polling, self.followup)


@dataclass(frozen=True, slots=True)
class Exchange:
    """Messages, each after its pause (the first: after the previous reply was read),
    then the reply."""

    texts: tuple[str, ...]
    pauses_s: tuple[float, ...]
    corrected: bool


@dataclass(frozen=True, slots=True)
class Plan:
    route: Route
    reading: Reading
    exchanges: tuple[Exchange, ...]

    @property
    def messages(self) -> int:
        return sum(len(e.texts) for e in self.exchanges)

    @property
    def corrected(self) -> bool:
        return any(e.corrected for e in self.exchanges)


def plan(rng: random.Random, mix: Mix) -> Plan:
    """A conversation drawn from ``rng``: a burst of 1-3 fragments 0.1-0.4 s apart, with
    the share ``mix.correction`` a correction 0.3-1.2 s after its last one; then with the
    share ``mix.followup`` a follow-up burst of 1-2 fragments 0.5-2 s after the reply."""
    route = Route.AGENT if rng.random() < mix.delegated else Route.DIRECT
    reading = Reading.POLL if rng.random() < mix.polling else Reading.STREAM
    n = rng.randint(1000, 9999)
    texts = [t.format(n=n) for t in rng.sample(FRAGMENTS, rng.randint(1, 3))]
    pauses = [0.0] + [rng.uniform(0.1, 0.4) for _ in texts[1:]]
    corrected = rng.random() < mix.correction
    if corrected:
        texts.append(rng.choice(CORRECTIONS).format(n=n + 1))
        pauses.append(rng.uniform(0.3, 1.2))
    if route is Route.AGENT:
        texts[0] = f"{COMMAND} {texts[0]}"
    exchanges = [Exchange(tuple(texts), tuple(pauses), corrected)]
    if rng.random() < mix.followup:
        more = rng.sample(FOLLOW_UPS, rng.randint(1, 2))
        pauses = [rng.uniform(0.5, 2.0)] + [rng.uniform(0.1, 0.4) for _ in more[1:]]
        exchanges.append(Exchange(tuple(more), tuple(pauses), corrected=False))
    return Plan(route, reading, tuple(exchanges))


@dataclass(slots=True)
class Timeline:
    """The session's events as the customer read them, each with the time it was read
    (``time.monotonic()``)."""

    to_seq: dict[str, int] = field(default_factory=dict)
    """Per turn id, the last message its range holds (as far as read)."""
    seen: list[tuple[float, str, str, int]] = field(default_factory=list)
    """(read at, kind, turn id, the turn's ``to_seq`` then) of each start, absorption,
    draft or delivery."""
    replies: dict[str, str] = field(default_factory=dict)
    """Per turn id, the text of its delivered reply (the parts joined)."""
    failure: str | None = None
    last_event_id: int = 0

    def observe(self, event: dict[str, Any], read_at: float) -> None:
        """One event of the session, as ``/stream`` or ``/events`` shapes it."""
        kind = str(event.get("kind", ""))
        turn_id = str(event.get("turn_id") or "")
        data = event.get("data")
        data = data if isinstance(data, dict) else {}
        event_id = event.get("event_id")
        if isinstance(event_id, int):
            self.last_event_id = max(self.last_event_id, event_id)
        if kind in ("turn.started", "turn.absorbed") and turn_id:
            to_seq = data.get("to_seq")
            if isinstance(to_seq, int):
                self.to_seq[turn_id] = max(self.to_seq.get(turn_id, 0), to_seq)
            self.seen.append((read_at, kind, turn_id, self.to_seq.get(turn_id, 0)))
        elif kind in SEEN_KINDS and turn_id:
            self.seen.append((read_at, kind, turn_id, self.to_seq.get(turn_id, 0)))
            if kind == "response.delivered":
                text = str(data.get("text") or "")
                self.replies[turn_id] = self.replies.get(turn_id, "") + text
        elif kind in FAILURE_KINDS and self.failure is None:
            self.failure = f"{kind}: {str(data.get('error') or data.get('reason') or '')[:200]}"

    def _covers(self, turn_id: str, to_seq_then: int, last_seq: int) -> bool:
        return max(to_seq_then, self.to_seq.get(turn_id, 0)) >= last_seq

    def first_visible(self, accepted_at: float, last_seq: int) -> float | None:
        """When the first draft or reply of a turn holding message ``last_seq`` was read
        after ``accepted_at``; None if none yet."""
        return self._first(SEEN_KINDS, accepted_at, last_seq)

    def started(self, accepted_at: float, last_seq: int) -> float | None:
        """When the start (or absorption) of a turn holding ``last_seq`` was read after
        ``accepted_at``: the accumulation window had closed over it."""
        return self._first(("turn.started", "turn.absorbed"), accepted_at, last_seq)

    def _first(self, kinds: Sequence[str], accepted_at: float, last_seq: int) -> float | None:
        for read_at, kind, turn_id, to_seq in self.seen:
            if kind in kinds and read_at >= accepted_at and self._covers(turn_id, to_seq, last_seq):
                return read_at
        return None

    def reply(self, last_seq: int) -> tuple[float, str] | None:
        """(read at, text) of the first delivered reply of a turn holding ``last_seq``."""
        for read_at, kind, turn_id, to_seq in self.seen:
            if kind == "response.delivered" and self._covers(turn_id, to_seq, last_seq):
                return read_at, self.replies.get(turn_id, "")
        return None


class Seen(BaseModel):
    """One exchange's figures, in ms from the moment its last message was accepted."""

    model_config = ConfigDict(extra="forbid")

    turn_started_ms: float | None = None
    """The start (or absorption) of the turn holding that message was read: the
    accumulation window closed over it."""
    first_visible_ms: float | None = None
    """Its first visible chunk was read."""
    reply_ms: float | None = None
    """Its delivered reply was read."""

    @classmethod
    def of(cls, timeline: "Timeline", accepted_at: float, last_seq: int) -> "Seen":
        def ms(at: float | None) -> float | None:
            return None if at is None else (at - accepted_at) * 1000

        reply = timeline.reply(last_seq)
        return cls(
            turn_started_ms=ms(timeline.started(accepted_at, last_seq)),
            first_visible_ms=ms(timeline.first_visible(accepted_at, last_seq)),
            reply_ms=ms(None if reply is None else reply[0]),
        )


class Record(BaseModel):
    """One conversation as the load test's user lived it; a JSON line of the records
    file. Times are ``time.monotonic()`` seconds (one clock for every process of the
    machine), durations milliseconds."""

    model_config = ConfigDict(extra="forbid")

    user: int
    route: Route
    reading: Reading
    corrected: bool
    exchanges: int
    planned: int
    """Messages the plan had."""
    started: float
    ended: float = 0.0
    session_id: str | None = None
    accepted: int = 0
    """Messages answered 202."""
    last_seq: int = 0
    seen: list[Seen] = Field(default_factory=list)
    """Per exchange answered, what the customer saw when."""
    resent: int = 0
    """Requests sent once more because their connection broke before an answer (each
    answered the second time)."""
    error: str | None = None
    completed: bool = False
    """It ran to its end without an error."""

    @property
    def interrupted(self) -> bool:
        """Locust stopped it at the end of the run, before its end (no error of acf's)."""
        return not self.completed and self.error is None
