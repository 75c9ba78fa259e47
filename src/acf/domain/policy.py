"""Channel policies: how acf behaves on a channel (accumulation, fallback, idle close), with
DESIGN §5 defaults. No channel falls back by default: a tenant chooses its ladder (DESIGN §9).
A session closes after ``idle_timeout_s`` without activity (DESIGN §15, ``domain/idle_close``)."""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue

DEFAULT_IDLE_TIMEOUT_S = 86_400
"""24 hours: a conversation untouched this long is over (seed 003's session TTL)."""


class AccumulationMode(StrEnum):
    OFF = "off"
    """Every message is its own turn (email, voice)."""
    FIXED = "fixed"
    """Close ``window_ms`` after the last message, within the cap."""
    ADAPTIVE = "adaptive"
    """Typing, completeness and confirmation answers move the close (DESIGN §5)."""


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    mode: AccumulationMode
    window_ms: int = 0
    min_window_ms: int = 0
    max_window_ms: int = 0
    typing_grace_ms: int = 0
    fallback: tuple[Channel, ...] = ()
    """Where a reply refused definitely on this channel is sent instead, in order
    (``acf.domain.fallback``); empty: it stays failed."""
    segment_pacing_ms: int = 0
    """The pause before each later segment of a reply (typing shown meanwhile), so a
    multi-part answer reads as written, and SMS parts arrive in order."""
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    """A session on this channel closes after this long without activity (DESIGN §15); the
    customer's next message opens a new one. Applies whatever the accumulation mode."""
    incomplete_window_ms: int = 0
    """The window after a text that ends unfinished (``,`` ``:`` ``;`` ``-`` or a trailing
    conjunction: ``text_shapes.shape_of``); 0: ``window_ms`` (no lengthening)."""
    typing_hold_ms: int = 0
    """Hold a reply that is ready while the customer types, before its commit, for at most
    this long (``service.typing_hold``); 0: never hold."""
    pace: bool = False
    """Learn the customer's own gaps between fragments (``domain.pace``) and let the
    adaptive window follow them within ``min_window_ms`` and ``max_window_ms``."""

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0:
            raise InvalidValue(
                f"channel policy: idle_timeout_s must be positive, got {self.idle_timeout_s}"
            )
        if self.segment_pacing_ms < 0:
            raise InvalidValue("channel policy: segment_pacing_ms must not be negative")
        if len(set(self.fallback)) != len(self.fallback):
            raise InvalidValue(
                "channel policy: fallback names a channel twice: "
                + ", ".join(c.value for c in self.fallback)
            )
        if self.typing_hold_ms < 0:
            raise InvalidValue("channel policy: typing_hold_ms must not be negative")
        if self.mode is AccumulationMode.OFF:
            return
        if min(self.window_ms, self.min_window_ms, self.max_window_ms, self.typing_grace_ms) < 0:
            raise InvalidValue("channel policy: windows must not be negative")
        if not self.min_window_ms <= self.window_ms <= self.max_window_ms:
            raise InvalidValue(
                "channel policy: expected min_window_ms <= window_ms <= max_window_ms, got "
                f"{self.min_window_ms} / {self.window_ms} / {self.max_window_ms}"
            )
        if self.incomplete_window_ms < 0:
            raise InvalidValue("channel policy: incomplete_window_ms must not be negative")

    @property
    def unfinished_window_ms(self) -> int:
        """The window after a text that ends unfinished: ``incomplete_window_ms`` within
        ``window_ms`` .. ``max_window_ms`` (a tenant that narrows the windows keeps acf's
        lengthening inside them), or ``window_ms`` when it is 0."""
        if not self.incomplete_window_ms:
            return self.window_ms
        return max(self.window_ms, min(self.incomplete_window_ms, self.max_window_ms))


INCOMPLETE_WINDOW_MS = 3000
"""Issue 23, from ``python -m acf.replay.fragments`` on the Slack log's fit half: text
ending unfinished is followed by its sender's next message within 3 s 15 % of the time
(plain text 1.1 %); so wait up to 3 s on every chat channel (within each one's
``max_window_ms``). The sweep on the same half confirmed it (docs/replay.md)."""
WEB_TYPING_HOLD_MS = 20_000
"""Issue 23: the web chat is the only channel with typing signals today. The typing sweep
on the Slack log's fit half (docs/replay.md): an 8 s cap leaves 67 % of naive's replies
landing while the customer types (long messages outlast it); 20 s brings that under half
without adding wait to any run's answer (p95 0.6 s either way); the price is more
superseded pipeline runs."""

DEFAULT_CHANNEL_POLICIES: dict[Channel, ChannelPolicy] = {
    Channel.WHATSAPP: ChannelPolicy(
        AccumulationMode.ADAPTIVE,
        1200,
        400,
        4000,
        5000,
        segment_pacing_ms=1000,
        incomplete_window_ms=INCOMPLETE_WINDOW_MS,
    ),
    Channel.WEB: ChannelPolicy(
        AccumulationMode.ADAPTIVE,
        600,
        250,
        3000,
        4000,
        incomplete_window_ms=INCOMPLETE_WINDOW_MS,
        typing_hold_ms=WEB_TYPING_HOLD_MS,
    ),
    Channel.SMS: ChannelPolicy(
        AccumulationMode.ADAPTIVE,
        1500,
        500,
        5000,
        0,
        segment_pacing_ms=1500,
        incomplete_window_ms=INCOMPLETE_WINDOW_MS,
    ),
    Channel.TELEGRAM: ChannelPolicy(
        AccumulationMode.ADAPTIVE,
        1000,
        350,
        4000,
        5000,
        segment_pacing_ms=800,
        incomplete_window_ms=INCOMPLETE_WINDOW_MS,
    ),
    Channel.EMAIL: ChannelPolicy(AccumulationMode.OFF),
    Channel.VOICE: ChannelPolicy(AccumulationMode.OFF),
}
"""DESIGN §5 windows; ``pace`` is off everywhere until replay shows it helps."""
