"""A model's reply shaped for the channel it goes to (``ctx.capabilities``). Pure.

Markdown is stripped where the channel shows none (SMS, voice, email's plain text): the
marks go, the words stay (a link keeps its address). Each message is cut within the
channel's length at sentence ends (``acf.domain.formatting.split_text``, as the channels
do). Paragraphs stay together: a reply becomes several messages only when the model sends
it so (``send_messages``) or the channel's length makes it. Buttons, when a reply has
them, are degraded by the channel itself (numbered options); pacing between messages is
the channel's policy, as for any reply.
"""

import re
from collections.abc import Sequence

from acf.domain.capabilities import ChannelCapabilities
from acf.domain.formatting import split_text

_FENCE = re.compile(r"^```[^\n]*\n?|^```\s*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)[^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[*+]\s+", re.MULTILINE)
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_EMPHASIS_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE = re.compile(r"`([^`\n]+)`")
_BLANK_LINES = re.compile(r"\n{3,}")


def _link(match: re.Match[str]) -> str:
    text, address = match.group(1).strip(), match.group(2)
    return address if text in ("", address) else f"{text} ({address})"


def strip_markdown(text: str) -> str:
    """``text`` without markdown marks: headings, emphasis, code, quotes, rules and
    bullets (``*`` becomes ``-``); ``[words](url)`` becomes ``words (url)``. Words in
    snake_case and a lone ``*`` are left alone."""
    out = _FENCE.sub("", text)
    out = _IMAGE.sub(_link, out)
    out = _LINK.sub(_link, out)
    out = _RULE.sub("", out)
    out = _HEADING.sub("", out)
    out = _QUOTE.sub("", out)
    out = _BULLET.sub(r"\1- ", out)
    out = _STRONG.sub(r"\2", out)
    out = _EMPHASIS_STAR.sub(r"\1", out)
    out = _EMPHASIS_UNDERSCORE.sub(r"\1", out)
    out = _STRIKE.sub(r"\1", out)
    out = _CODE.sub(r"\1", out)
    return _BLANK_LINES.sub("\n\n", out).strip()


def shape(texts: Sequence[str], capabilities: ChannelCapabilities) -> list[str]:
    """The messages to send for ``texts``: markdown stripped where the channel has none,
    empty ones dropped, each within the channel's length."""
    shaped: list[str] = []
    for text in texts:
        body = text if capabilities.markdown else strip_markdown(text)
        body = body.strip()
        if body:
            shaped += split_text(body, capabilities.max_text_length)
    return shaped
