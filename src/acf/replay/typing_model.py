"""The replay's model of a customer's typing (filled in by issue 23's typing synthesis)."""

from collections.abc import Sequence
from dataclasses import dataclass

from acf.replay.sources import ChatLine


@dataclass(frozen=True, slots=True)
class TypingModel:
    cps: float = 5.0
    seed: int = 23


@dataclass(frozen=True, slots=True)
class Signal:
    at_ms: int
    session: str
    active: bool


@dataclass(frozen=True, slots=True)
class Stretch:
    session: str
    seq: int
    start_ms: int
    end_ms: int


def synthesise(lines: Sequence[ChatLine], model: TypingModel) -> tuple[list[Signal], list[Stretch]]:
    raise NotImplementedError
