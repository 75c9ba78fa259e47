"""Halves of a chat log, by conversation: rules are fitted on one, reported on the other.

Issue 23 fits acf's timing rules and defaults on half of a log's conversations and reports
its targets on the other half, so a rule cannot be tuned to the very messages it is judged
on. A conversation is never cut: its lines all go to the same half. Each conversation's
half depends only on the seed and its own id (a SHA-256 of ``"seed:conversation"``), so
everyone replaying the same log gets the same halves, and adding or removing conversations
moves no other conversation to the other half. The halves are about even (each conversation
is a fair coin toss), not exactly so.
"""

import hashlib
from collections.abc import Sequence

from acf.replay.sources import ChatLine

SPLIT_SEED = 23
HALVES = ("all", "fit", "test")


def conversations_of(lines: Sequence[ChatLine]) -> list[str]:
    """The conversations of ``lines``, in the order of their first message."""
    return list(dict.fromkeys(line.conversation for line in lines))


def half_of(conversation: str, seed: int = SPLIT_SEED) -> str:
    """``fit`` or ``test``: the first bit of the SHA-256 of ``"{seed}:{conversation}"``
    (a hash that is the same in every process, unlike Python's salted ``hash``)."""
    digest = hashlib.sha256(f"{seed}:{conversation}".encode()).digest()
    return "fit" if digest[0] < 128 else "test"


def split(lines: Sequence[ChatLine], half: str, seed: int = SPLIT_SEED) -> list[ChatLine]:
    """The lines of one half, in their order: ``all`` of them, or those whose conversation
    ``half_of`` puts in the ``fit`` or the ``test`` half."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}; expected one of {', '.join(HALVES)}")
    if half == "all":
        return list(lines)
    halves = {c: half_of(c, seed) for c in conversations_of(lines)}
    return [line for line in lines if halves[line.conversation] == half]


def first_conversations(lines: Sequence[ChatLine], n: int) -> list[ChatLine]:
    """The lines of the first ``n`` conversations (by their first message)."""
    wanted = set(conversations_of(lines)[:n])
    return [line for line in lines if line.conversation in wanted]
