"""How each channel names a customer, so a linked address matches what its webhooks give.

A WhatsApp ``wa_id`` is digits without ``+`` (``15550001``); an SMS number is E.164 with
``+`` (``+15550001``; a number without its country code is refused rather than guessed); an
email address is compared lower-cased; a Telegram chat id is a 64-bit integer. Spaces,
dashes, dots and brackets people write in phone numbers are dropped.
"""

import re

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue

_PHONE_NOISE = re.compile(r"[\s\-().]")
_WA_ID = re.compile(r"[1-9][0-9]{5,14}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CHAT_ID = re.compile(r"-?[0-9]{1,19}")


def normalised_address(channel: Channel, address: str) -> str:
    """``address`` written as ``channel``'s webhooks write it; ``InvalidValue`` if it
    cannot be one."""
    value = address.strip()
    if channel is Channel.WHATSAPP:
        digits = _PHONE_NOISE.sub("", value).removeprefix("+")
        if not _WA_ID.fullmatch(digits):
            raise InvalidValue(f"{address!r} is not a WhatsApp id (digits, as 15550001)")
        return digits
    if channel is Channel.SMS:
        number = _PHONE_NOISE.sub("", value)
        if not _E164.fullmatch(number):
            raise InvalidValue(f"{address!r} is not an E.164 number (as +15550001)")
        return number
    if channel is Channel.EMAIL:
        if not _EMAIL.fullmatch(value):
            raise InvalidValue(f"{address!r} is not an email address")
        return value.lower()
    if channel is Channel.TELEGRAM:
        if not _CHAT_ID.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
            raise InvalidValue(f"{address!r} is not a Telegram chat id (an integer)")
        return value
    if not value:
        raise InvalidValue("the address is empty")
    return value
