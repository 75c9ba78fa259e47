"""A synthetic chat-timing sample for ``acf replay``, generated from a seed.

Customers write in runs of fragments ("hi" / "I ordered a lamp" / "it came broken and"),
then someone else in the conversation answers. What matters to the replay is the timing,
so the texts are made here from short word lists (no third-party text) and the gaps follow
what real chat shows between one sender's consecutive fragments: p10 ≈ 4 s, p50 ≈ 19 s,
p90 ≈ 99 s, with bursts of a few fragments a second or two apart. Several senders share a
conversation, and conversations overlap in time.

``python -m acf.replay.sample examples/chat-timing-sample.csv`` writes the file kept in the
repository; a test checks that the file is what this module generates.
"""

import csv
import io
import sys
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random

SEED = 17
CONVERSATIONS = 120
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

FRAGMENT_GAP_QUANTILES_S = ((0.0, 0.7), (0.1, 4.0), (0.5, 19.0), (0.9, 99.0), (1.0, 420.0))
"""Quantiles of the gap between one sender's consecutive fragments, in seconds; between
two of them the gap is interpolated on a log scale."""
RUN_LENGTHS = ((1, 0.42), (2, 0.25), (3, 0.14), (4, 0.09), (5, 0.06), (6, 0.04))
"""Fragments per run and their weights (mean ≈ 2.3)."""

_NAMES = (
    "ana", "ben", "chidi", "dana", "eli", "farah", "goran", "hana", "ivo", "jun", "kemal",
    "lena", "mato", "nia", "omar", "pia", "quinn", "rosa", "sami", "tove",
)  # fmt: skip
_OPENERS = ("hi", "hello", "hey", "good morning", "hi there", "hello again")
_ITEMS = ("lamp", "kettle", "backpack", "desk chair", "phone case", "rain jacket", "blender")
_FIRST = (
    "I ordered a {item} last week",
    "my {item} arrived today",
    "I want to return the {item}",
    "the {item} I bought is the wrong colour",
    "where is my {item}",
    "can I change the address for the {item}",
)
_MIDDLE = (
    "and it is broken",
    "but the box was open",
    "order {order}",
    "it says delivered but",
    "I was not at home,",
    "and nobody called",
    "the tracking has not moved since Monday",
    "sorry, I meant order {order}",
    "I paid with a card",
    "is that possible?",
    "it is for a birthday on Friday",
    "also",
)
_LAST = ("thanks", "thank you!", "ok", "please let me know", "any news?", "that's all")
_ANSWERS = (
    "let me check that for you",
    "I see order {order}, one moment",
    "sure, what is the new address?",
    "sorry about that",
    "done, you will get an email",
    "could you send a photo?",
    "the courier comes tomorrow",
    "yes, that works",
)


@dataclass(frozen=True, slots=True)
class SampleLine:
    conversation: str
    sender: str
    at_ms: int
    text: str


def fragment_gap_s(u: float) -> float:
    """The gap at quantile ``u`` (0 to 1) of ``FRAGMENT_GAP_QUANTILES_S``."""
    points = FRAGMENT_GAP_QUANTILES_S
    index = min(max(bisect_right([q for q, _ in points], u) - 1, 0), len(points) - 2)
    (q0, g0), (q1, g1) = points[index], points[index + 1]
    share = (u - q0) / (q1 - q0)
    return float(g0 * (g1 / g0) ** share)


class _Draw:
    """Choices from one seeded stream (only ``random()``: the same sample on any Python)."""

    def __init__(self, seed: int) -> None:
        self._random = Random(seed)

    def unit(self) -> float:
        return self._random.random()

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.unit() * len(options))]

    def between(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def run_length(self) -> int:
        u, total = self.unit(), 0.0
        for length, weight in RUN_LENGTHS:
            total += weight
            if u < total:
                return length
        return RUN_LENGTHS[-1][0]


def _run_texts(draw: _Draw, length: int, first_run: bool, order: int) -> list[str]:
    def fill(template: str) -> str:
        return template.format(item=draw.pick(_ITEMS), order=order)

    texts = [draw.pick(_OPENERS)] if first_run and length > 1 else []
    texts.append(fill(draw.pick(_FIRST)) if first_run else fill(draw.pick(_MIDDLE)))
    while len(texts) < length:
        closing = len(texts) == length - 1 and draw.unit() < 0.3
        texts.append(fill(draw.pick(_LAST if closing else _MIDDLE)))
    return texts[:length]


def _conversation(draw: _Draw, number: int, start_ms: int) -> list[SampleLine]:
    senders = [draw.pick(_NAMES) + str(number)]
    while len(senders) < 2 + int(draw.unit() * 3):  # 2 to 4 people
        senders.append(draw.pick(_NAMES) + str(number) + chr(ord("a") + len(senders)))
    customer, order = senders[0], 1000 + int(draw.unit() * 9000)
    lines: list[SampleLine] = []
    at_ms = start_ms
    for turn in range(3 + int(draw.unit() * 8)):  # the customer and the others, in turn
        speaker = customer if turn % 2 == 0 else draw.pick(tuple(senders[1:]))
        if turn % 2 == 0:
            texts = _run_texts(draw, draw.run_length(), turn == 0, order)
        else:
            texts = [draw.pick(_ANSWERS).format(order=order)]
            if draw.unit() < 0.3:
                texts.append(draw.pick(_ANSWERS).format(order=order))
        for index, text in enumerate(texts):
            if index:
                at_ms += int(fragment_gap_s(draw.unit()) * 1000)
            lines.append(SampleLine(str(number), speaker, at_ms, text))
        at_ms += int(draw.between(3, 90) * 1000)  # until someone else answers
    return lines


def generate(seed: int = SEED, conversations: int = CONVERSATIONS) -> list[SampleLine]:
    """The sample's lines in time order: conversations start a few minutes apart (busier
    now and then), so their messages interleave."""
    draw = _Draw(seed)
    start_ms = int(START.timestamp() * 1000)
    lines: list[SampleLine] = []
    for number in range(1, conversations + 1):
        lines += _conversation(draw, number, start_ms)
        busy = draw.unit() < 0.25  # a burst of conversations starting together
        start_ms += int(draw.between(5, 40 if busy else 400) * 1000)
    return sorted(lines, key=lambda line: (line.at_ms, int(line.conversation)))


def render(lines: list[SampleLine]) -> str:
    """The CSV ``acf replay`` reads: conversation, sender, timestamp (ISO 8601, UTC), text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["conversation", "sender", "timestamp", "text"])
    for line in lines:
        at = datetime.fromtimestamp(line.at_ms / 1000, UTC)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{line.at_ms % 1000:03d}Z"
        writer.writerow([line.conversation, line.sender, stamp, line.text])
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m acf.replay.sample OUTPUT.csv")
    Path(args[0]).write_text(render(generate()), encoding="utf-8")


if __name__ == "__main__":
    main()
