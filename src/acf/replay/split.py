"""Halves of a chat log, by conversation: rules are fitted on one, reported on the other.

Issue 23 fits acf's timing rules and defaults on half of a log's conversations and reports
its targets on the other half, so a rule cannot be tuned to the very messages it is judged
on. A conversation is never cut: its lines all go to the same half. The halves come from a
fixed seed, so everyone replaying the same log gets the same ones.
"""

import random
from collections.abc import Sequence

from acf.replay.sources import ChatLine

SPLIT_SEED = 23
HALVES = ("all", "fit", "test")


def conversations_of(lines: Sequence[ChatLine]) -> list[str]:
    """The conversations of ``lines``, in the order of their first message."""
    return list(dict.fromkeys(line.conversation for line in lines))


def split(lines: Sequence[ChatLine], half: str, seed: int = SPLIT_SEED) -> list[ChatLine]:
    """The lines of one half, in their order: ``all`` of them, or those of the ``fit`` half
    (the first ``n // 2`` conversations once shuffled by ``random.Random(seed)``) or the
    ``test`` half (the others)."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}; expected one of {', '.join(HALVES)}")
    if half == "all":
        return list(lines)
    order = conversations_of(lines)
    random.Random(seed).shuffle(order)
    fit = set(order[: len(order) // 2])
    return [line for line in lines if (line.conversation in fit) == (half == "fit")]


def first_conversations(lines: Sequence[ChatLine], n: int) -> list[ChatLine]:
    """The lines of the first ``n`` conversations (by their first message)."""
    wanted = set(conversations_of(lines)[:n])
    return [line for line in lines if line.conversation in wanted]
