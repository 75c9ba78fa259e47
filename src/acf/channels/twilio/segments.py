"""SMS segments: how many a text costs and how a reply is cut so each message stays small.

Facts (GSM 03.38; ``../shared/reference/channels.md``): a text in the GSM-7 alphabet goes in
7-bit septets, 160 in one segment, 153 per segment of a longer message (the rest carries
the concatenation header); the extension table's characters (``€ [ ] { } ^ ~ \\ |`` and form
feed) take two septets, an escape and the character, and are never split across segments.
Any other character makes the whole text UCS-2: 70 UTF-16 code units in one segment, 67 per
segment of a longer one, an emoji outside the BMP taking two units that stay together.
Twilio takes a Body of at most 1,600 characters.
"""

from dataclasses import dataclass
from enum import StrEnum

from acf.domain.errors import InvalidValue
from acf.domain.formatting import split_text

MAX_BODY = 1600
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class Limits:
    single: int
    """Units in a message of one segment."""
    part: int
    """Units per segment of a longer message."""


LIMITS = {Encoding.GSM7: Limits(160, 153), Encoding.UCS2: Limits(70, 67)}


def encoding(text: str) -> Encoding:
    """GSM-7 when every character is in its basic or extension table, else UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return Encoding.GSM7
    return Encoding.UCS2


def _costs(text: str, enc: Encoding) -> list[int]:
    """What each character takes: septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if enc is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segment_count(text: str) -> int:
    """The segments a text costs as one SMS (0 for an empty text)."""
    enc = encoding(text)
    costs = _costs(text, enc)
    limits = LIMITS[enc]
    if sum(costs) <= limits.single:
        return 1 if costs else 0
    segments, used = 1, 0
    for cost in costs:  # a two-unit character never straddles two segments
        if used + cost > limits.part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def fits(text: str, max_segments: int) -> bool:
    return len(text) <= MAX_BODY and segment_count(text) <= max_segments


def sms_parts(text: str, max_segments: int) -> list[str]:
    """``text`` as messages of at most ``max_segments`` segments and 1,600 characters each,
    cut where ``split_text`` cuts (after a sentence end, else at whitespace)."""
    if max_segments < 1:
        raise InvalidValue("max_segments must be at least 1")
    parts: list[str] = []
    rest = text.strip()
    while rest and not fits(rest, max_segments):
        head = split_text(rest, _longest_fitting_prefix(rest, max_segments))[0]
        parts.append(head)
        rest = rest[len(head) :].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _longest_fitting_prefix(text: str, max_segments: int) -> int:
    """The length of the longest prefix that fits: a prefix never costs more than a longer
    one, so a binary search finds it."""
    low, high = 1, min(len(text), MAX_BODY)  # one character always fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[:middle], max_segments):
            low = middle
        else:
            high = middle - 1
    return low
