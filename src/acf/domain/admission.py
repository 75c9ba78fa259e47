"""How many sessions one process works on at once, sized from how late its event loop runs.

A process admits a session's work (its lease, its turns) into one of a limited number of
slots (DESIGN §15); the rest wait, holding no lease. The limit follows measured capacity:
when the event loop runs later than a target, the process is doing more than it can keep up
with — its lease renewals, its wake-ups and its acknowledgements all wait behind the work —
so the limit halves; while the loop keeps up and sessions are waiting, it grows by an eighth
(at least one). Overload then costs latency, never correctness (issue 17).
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionBounds:
    low: int
    """Never fewer slots than this (the process always makes progress)."""
    high: int
    """Never more (the configured total)."""
    target_lag_ms: float
    """The event loop's lateness above which the limit shrinks."""

    def __post_init__(self) -> None:
        if not 1 <= self.low <= self.high:
            raise ValueError(f"admission: expected 1 <= low <= high, got {self.low}, {self.high}")
        if self.target_lag_ms <= 0:
            raise ValueError("admission: target_lag_ms must be positive")


def target_lag_ms(ttl_ms: int, renew_every_ms: int, cap_ms: float = 100.0) -> float:
    """The loop lateness to keep under: a small share of the slack a lease renewal has
    before the lease expires (``ttl - renew_every``), and at most ``cap_ms``."""
    return min(cap_ms, (ttl_ms - renew_every_ms) / 20)


def next_limit(limit: int, lag_ms: float, waiting: int, bounds: AdmissionBounds) -> int:
    """The next limit after one measurement of the loop's lateness ``lag_ms``, with
    ``waiting`` sessions waiting for a slot."""
    if lag_ms > bounds.target_lag_ms:
        return max(bounds.low, min(bounds.high, limit // 2))
    if waiting and lag_ms <= bounds.target_lag_ms / 2:
        return min(bounds.high, max(bounds.low, limit + max(1, limit // 8)))
    return max(bounds.low, min(bounds.high, limit))
