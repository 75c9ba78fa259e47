"""The session key: a structured value, never a colon-joined string.

Provider ids contain colons (``whatsapp:+1555...``), so any joined form must be reversible:
``to_path`` percent-encodes each part and joins them with ``/``.
"""

from dataclasses import dataclass
from urllib.parse import quote, unquote

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue

MAX_PART_LENGTH = 256


def _check_part(name: str, value: str) -> None:
    if not value:
        raise InvalidValue(f"session key: {name} must not be empty")
    if len(value) > MAX_PART_LENGTH:
        raise InvalidValue(f"session key: {name} is longer than {MAX_PART_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidValue(f"session key: {name} contains a control character")


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Who talks to whom, where: (tenant, agent, customer, channel)."""

    tenant: str
    agent: str
    customer: str
    channel: Channel

    def __post_init__(self) -> None:
        _check_part("tenant", self.tenant)
        _check_part("agent", self.agent)
        _check_part("customer", self.customer)
        if not isinstance(self.channel, Channel):
            try:
                object.__setattr__(self, "channel", Channel(self.channel))
            except ValueError:
                known = ", ".join(c.value for c in Channel)
                raise InvalidValue(
                    f"session key: unknown channel {self.channel!r} (known: {known})"
                ) from None

    def to_path(self) -> str:
        """A reversible single-string form, safe for ids containing ``:`` or ``/``."""
        parts = (self.tenant, self.agent, self.customer, self.channel.value)
        return "/".join(quote(p, safe="") for p in parts)

    @classmethod
    def from_path(cls, path: str) -> "SessionKey":
        parts = path.split("/")
        if len(parts) != 4:
            raise InvalidValue(f"session key path must have 4 parts, got {len(parts)}")
        tenant, agent, customer, channel = (unquote(p) for p in parts)
        return cls(tenant, agent, customer, Channel(channel))
