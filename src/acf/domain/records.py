"""TurnRecord: the full account of one turn, written in the turn's final transaction."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.domain.events import Correlation
from acf.domain.turns import TurnPhase


@dataclass(frozen=True, slots=True)
class TurnRecord:
    correlation: Correlation
    outcome: TurnPhase
    from_seq: int
    to_seq: int
    attempt: int
    started_at_ms: int
    ended_at_ms: int
    replies: tuple[str, ...] = ()
    state_version_before: int | None = None
    state_version_after: int | None = None
    error: str | None = None
    timings_ms: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
