"""The fallback ladder (DESIGN §9): where a reply refused definitely goes next.

A reply that a provider refused for good (a 4xx, a ``failed`` status) is sent once more on
the next channel of the ladder the tenant configured for the channel it started on, to the
address the customer linked there. Never after a timeout or a 5xx: the first send may
still arrive, and a second channel would duplicate it. Each step tries a channel at most
once per reply, so a ladder always ends.

``Route`` is where one outbox row goes: a channel and the customer's address on it, as the
channel's session key names the customer (WhatsApp's ``wa_id``, an E.164 number for SMS,
a Telegram chat id, an email address, a web customer id).
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue

ROUTE_TTL_MS = 7 * 24 * 3600 * 1000
"""How long an address a reply fell back to (or a conversation continued on) keeps
answering into that session: a reply days later still belongs there; weeks later it is a
new conversation (and a reassigned number does not join a stranger's)."""

NO_LADDER = "no fallback is configured for this channel"
LADDER_EXHAUSTED = "every channel of the fallback ladder was tried"


@dataclass(frozen=True, slots=True)
class Route:
    channel: Channel
    address: str

    def __post_init__(self) -> None:
        if not isinstance(self.channel, Channel):
            try:
                object.__setattr__(self, "channel", Channel(self.channel))
            except ValueError:
                raise InvalidValue(f"route: unknown channel {self.channel!r}") from None
        if not self.address or len(self.address) > 256:
            raise InvalidValue("route: address must have 1 to 256 characters")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in self.address):
            raise InvalidValue("route: address contains a control character")

    def as_payload(self) -> dict[str, str]:
        return {"channel": self.channel.value, "address": self.address}


@dataclass(frozen=True, slots=True)
class FallbackDecision:
    route: Route | None
    """Where to send the copy; ``None``: the row stays failed, for ``reason``."""
    reason: str


def next_route(
    failed: Channel,
    ladder: Sequence[Channel],
    tried: Collection[Channel],
    linked: Mapping[Channel, str],
    reachable: Collection[Channel] | None = None,
) -> FallbackDecision:
    """The first channel of ``ladder`` not yet tried for this reply (``failed`` included),
    on which the customer has a ``linked`` address and the tenant can send (``reachable``;
    ``None``: any channel)."""
    if not ladder:
        return FallbackDecision(None, NO_LADDER)
    skipped: list[str] = []
    for channel in ladder:
        if channel == failed or channel in tried:
            continue
        if reachable is not None and channel not in reachable:
            skipped.append(f"no sender for {channel.value}")
            continue
        address = linked.get(channel)
        if address is None:
            skipped.append(f"no linked address on {channel.value}")
            continue
        return FallbackDecision(
            Route(channel, address), f"{failed.value} refused the reply definitely"
        )
    return FallbackDecision(None, "; ".join(skipped) if skipped else LADDER_EXHAUSTED)
