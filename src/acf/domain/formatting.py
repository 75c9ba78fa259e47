"""Outbound formatting shared by the channels: long text split within a channel's limit,
buttons degraded to numbered options where a channel cannot show them (DESIGN §9)."""

import re
from collections.abc import Sequence

from acf.domain.capabilities import ChannelCapabilities
from acf.domain.errors import InvalidValue
from acf.domain.replies import Button

# A sentence ends at . ! ? or … (then closing quotes or brackets), before whitespace.
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*(?=\s)")


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters: cut after the last sentence end
    that fits, else at the last whitespace, else (one very long word) at the limit.
    Whitespace at the cuts is dropped; the parts joined by spaces read as the text."""
    if limit < 1:
        raise InvalidValue("the split limit must be at least 1 character")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = _last_sentence_end(window)
        if cut is None:
            space = window.rfind(" ", 0, limit + 1)
            newline = window.rfind("\n", 0, limit + 1)
            cut = max(space, newline)
            if cut <= 0:
                cut = limit
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _last_sentence_end(window: str) -> int | None:
    ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() < len(window)]
    return ends[-1] if ends else None


def numbered_options(text: str, buttons: Sequence[Button]) -> str:
    """The text followed by one numbered line per button: ``1. Yes``."""
    lines = [f"{n}. {b.title}" for n, b in enumerate(buttons, start=1)]
    return "\n".join([text.rstrip(), "", *lines]) if text.strip() else "\n".join(lines)


def shown_as_options(capabilities: ChannelCapabilities, buttons: Sequence[Button]) -> bool:
    """Whether ``buttons`` reach the customer as numbered options on a channel with these
    capabilities: too many, a title too long, or two the same."""
    titles = [b.title for b in buttons]
    return bool(buttons) and (
        len(buttons) > capabilities.max_buttons
        or any(len(t) > capabilities.max_button_title_length for t in titles)
        or len(set(titles)) != len(titles)
    )
