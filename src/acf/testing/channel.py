"""A recording channel: the ChannelSender the harness (and users' tests) deliver through."""

from collections import Counter
from dataclasses import dataclass

from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt
from acf.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class Sent:
    key: SessionKey
    outbox_id: int
    text: str
    at_ms: int
    provider_message_id: str
    parts_sent: int = 0
    """Provider messages of the row an earlier attempt had got accepted (resumed after)."""


@dataclass(frozen=True, slots=True)
class Typed:
    key: SessionKey
    last_inbound_id: str
    at_ms: int


class RecordingChannel:
    """Accepts every message and remembers it, unless told to fail the next sends.

    ``sends`` has every accepted call, repeats included; ``replies_for`` gives each outbox
    row once, in the order first accepted (what the customer saw).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.sends: list[Sent] = []
        self.typing: list[Typed] = []
        """Every typing indicator shown, in order."""
        self._failures: list[tuple[bool, int, int | None]] = []

    def fail_next(
        self,
        count: int = 1,
        definite: bool = False,
        parts_accepted: int = 0,
        retry_after_ms: int | None = None,
    ) -> None:
        """Refuse the next ``count`` sends: definitely (a 4xx) or transiently (a 5xx, or a
        429 asking to wait ``retry_after_ms``), after ``parts_accepted`` provider messages
        of the reply were accepted."""
        self._failures.extend([(definite, parts_accepted, retry_after_ms)] * count)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if self._failures:
            definite, parts, wait = self._failures.pop(0)
            raise DeliveryError("provider refused (scripted)", definite, parts, wait)
        pid = f"rec-{len(self.sends) + 1}"
        text = str(message.payload.get("text", ""))
        now = self._clock.now_ms()
        self.sends.append(Sent(message.key, message.outbox_id, text, now, pid, message.parts_sent))
        return SendReceipt(pid)

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        self.typing.append(Typed(key, last_inbound_id, self._clock.now_ms()))

    def replies_for(self, customer: str | None = None) -> list[str]:
        seen: set[int] = set()
        texts = []
        for sent in self.sends:
            if customer is not None and sent.key.customer != customer:
                continue
            if sent.outbox_id not in seen:
                seen.add(sent.outbox_id)
                texts.append(sent.text)
        return texts

    def repeats(self) -> int:
        """Sends beyond the first of each outbox row (allowed only after a crash)."""
        counts = Counter(s.outbox_id for s in self.sends)
        return sum(c - 1 for c in counts.values())
