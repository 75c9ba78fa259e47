"""The new text of a mail: quoted history and HTML markup removed (pure).

Mail programs quote the message answered below an attribution line (``On Mon, 2 Jun 2025
at 10:00, Ann <ann@example.com> wrote:``, which some wrap over two lines), or Outlook's
``-----Original Message-----``, or as lines starting with ``>``. What follows the first
such marker is history the conversation already holds; quoted lines elsewhere are dropped.
"""

import re
from html.parser import HTMLParser

_WROTE = re.compile(r"^\s*On\s.+\swrote:\s*$", re.IGNORECASE)
_ON = re.compile(r"^\s*On\s", re.IGNORECASE)
_WROTE_END = re.compile(r"\swrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)


def reply_text(body: str) -> str:
    """``body`` without the quoted history, trimmed."""
    lines = body.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _WROTE.match(line) or _ORIGINAL.match(line):
            break
        if _ON.match(line) and _WROTE_END.search(following):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


class _Text(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        if tag == "blockquote":
            self._quoted += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._quoted:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body, without ``<blockquote>`` (quoted history)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line).strip()
