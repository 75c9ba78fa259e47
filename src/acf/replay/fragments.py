"""How often is a message followed by its sender's next one within a few seconds, by the
shape of its text? The data behind the window rules of ``acf.domain.accumulation``.

    python -m acf.replay.fragments LOG [--format F] [--half all|fit|test] [--seed N]

Each (conversation, sender) is one customer session, as ``acf replay`` replays it; a message
is *followed within s seconds* when that session's next message comes at most ``s`` seconds
later (whatever others said meanwhile). The first table groups messages by
``text_shapes.shape_of``; the second looks closer at the rules: the old lengthening of
texts of four characters or fewer, texts ending in an emoji, plain texts ending in an
ellipsis (the rule leaves them at the plain window: this row says why) and each way a text
ends unfinished. A shape whose messages are followed more often than plain text is worth a
longer window; one followed less often, a shorter one. Fit rules on the ``fit`` half
(``acf.replay.split``) and judge them on the other.
"""

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from acf.domain.text_shapes import Shape, ends_trailing_off, is_emoji, shape_of, without_emoji
from acf.replay.runs import session_of
from acf.replay.sources import FORMATS, ChatLine, SourceError, read
from acf.replay.split import HALVES, SPLIT_SEED, split

WITHIN_S = (1, 2, 3, 4, 6)
"""The follow-up horizons of the tables, in seconds."""


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    messages: int
    followed: tuple[int, ...]
    """How many were followed within each of ``WITHIN_S``."""

    def share(self, index: int) -> float:
        return self.followed[index] / self.messages if self.messages else 0.0


@dataclass(frozen=True, slots=True)
class Gap:
    """A message and the time until its session's next message (None: there is none)."""

    line: ChatLine
    next_ms: int | None


def gaps(lines: Sequence[ChatLine]) -> list[Gap]:
    """Every message of ``lines`` (in time order) with the gap to its session's next one."""
    sessions: dict[str, list[ChatLine]] = defaultdict(list)
    for line in lines:
        sessions[session_of(line)].append(line)
    out = []
    for own in sessions.values():
        for line, following in zip(own, [*own[1:], None], strict=True):
            out.append(Gap(line, None if following is None else following.at_ms - line.at_ms))
    return out


def shape(text: str) -> Shape:
    """The shape the window rule sees (a message without text is plain)."""
    return shape_of(text) if text else Shape.DEFAULT


def row(label: str, chosen: Sequence[Gap]) -> Row:
    followed = tuple(
        sum(1 for g in chosen if g.next_ms is not None and g.next_ms <= s * 1000) for s in WITHIN_S
    )
    return Row(label, len(chosen), followed)


def shape_rows(all_gaps: Sequence[Gap]) -> list[Row]:
    """One row per shape, then all messages."""
    rows = [row(s.value, [g for g in all_gaps if shape(g.line.text) is s]) for s in Shape]
    return [*rows, row("all", all_gaps)]


def unfinished_ending(text: str) -> str:
    """How an unfinished text ends: ``:``, ``, ; -`` or a trailing conjunction."""
    end = " ".join(without_emoji(text)[0])
    if end.endswith(":"):
        return "unfinished :"
    if end.endswith((",", ";", "-")):
        return "unfinished , ; -"
    return "unfinished conj."


CHECKS: dict[str, Callable[[str], bool]] = {
    "≤ 4 chars (old rule)": lambda t: 0 < len(t.strip()) <= 4,
    "≤ 4 chars, not ack": lambda t: (
        0 < len(t.strip()) <= 4 and shape(t) is not Shape.ACKNOWLEDGEMENT
    ),
    "emoji end, not ack": lambda t: (
        bool(t.split()) and is_emoji(t.split()[-1].lower()) and shape(t) is Shape.COMPLETE
    ),
    "ends ... or … (plain)": lambda t: ends_trailing_off(t) and shape(t) is Shape.DEFAULT,
}


def check_rows(all_gaps: Sequence[Gap]) -> list[Row]:
    """The closer look: the old short-text rule, emoji endings, ellipses, each unfinished
    ending."""
    rows = [
        row(label, [g for g in all_gaps if test(g.line.text)]) for label, test in CHECKS.items()
    ]
    unfinished = [g for g in all_gaps if shape(g.line.text) is Shape.UNFINISHED]
    endings: dict[str, list[Gap]] = defaultdict(list)
    for g in unfinished:
        endings[unfinished_ending(g.line.text)].append(g)
    return rows + [row(label, endings[label]) for label in sorted(endings)]


def table(rows: Sequence[Row], title: str) -> Table:
    out = Table(title=title)
    out.add_column("text", justify="left")
    out.add_column("messages", justify="right")
    for s in WITHIN_S:
        out.add_column(f"≤ {s} s", justify="right")
    for r in rows:
        cells = [f"{r.share(i):.1%} ({n})" for i, n in enumerate(r.followed)]
        out.add_row(r.label, str(r.messages), *cells)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acf.replay.fragments", description=__doc__)
    parser.add_argument("log", type=Path)
    parser.add_argument("--format", choices=FORMATS, default=None)
    parser.add_argument("--half", choices=HALVES, default="all")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED)
    args = parser.parse_args(argv)
    try:
        lines = split(read(args.log, args.format), args.half, args.seed)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    all_gaps = gaps(lines)
    console = Console()
    if not console.is_terminal:  # piped: wide enough for the whole table
        console = Console(width=120)
    where = f"{args.log.name}, {args.half} half" if args.half != "all" else args.log.name
    console.print(table(shape_rows(all_gaps), f"Followed by the same sender, by shape ({where})"))
    console.print(table(check_rows(all_gaps), "A closer look"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
