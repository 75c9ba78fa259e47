"""How each channel names a customer, so a linked address matches what its webhooks give.

A WhatsApp ``wa_id`` is digits (``16505551234``; a leading ``+`` is dropped); an SMS number
is E.164 with ``+`` (``+16505551234``; a number without its country code is refused, not
guessed); an email address is compared lower-cased; a Telegram chat id is an integer. The
patterns are the API's schema too, so what the schema allows is what is accepted.
"""

import re

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue

_PART = r"[^@\s\x00-\x1f\x7f-\x9f]+"  # no @, whitespace or control character

PATTERNS: dict[Channel, str] = {
    Channel.WHATSAPP: r"^\+?[1-9][0-9]{5,14}$",
    Channel.SMS: r"^\+[1-9][0-9]{6,14}$",
    Channel.EMAIL: rf"^{_PART}@{_PART}\.{_PART}$",
    Channel.TELEGRAM: r"^-?[0-9]{1,18}$",
}
OTHER_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
"""Web and voice ids: no control characters, no surrounding whitespace."""

_EXPECTED = {
    Channel.WHATSAPP: "a WhatsApp id (digits, as 16505551234)",
    Channel.SMS: "an E.164 number (as +16505551234)",
    Channel.EMAIL: "an email address",
    Channel.TELEGRAM: "a Telegram chat id (an integer)",
}


def normalised_address(channel: Channel, address: str) -> str:
    """``address`` written as ``channel``'s webhooks write it; ``InvalidValue`` if it
    cannot be one."""
    if not re.fullmatch(PATTERNS.get(channel, OTHER_PATTERN), address):
        expected = _EXPECTED.get(channel, "an id without surrounding spaces")
        raise InvalidValue(f"{address!r} is not {expected}")
    if channel is Channel.WHATSAPP:
        return address.removeprefix("+")
    if channel is Channel.EMAIL:
        return address.lower()
    return address
