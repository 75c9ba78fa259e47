"""Cost per turn as the number of sessions grows: ``acf bench --sweep 1000,5000,10000,20000``.

For each size, a fresh embedded acf takes one message to each of N sessions at once; the
point records turns per second (first message sent to last reply delivered), the process's
CPU milliseconds per turn (every thread: the event loop and SQLite's), and how the turns
ended — FAILED turns, fallback replies and ``lease.lost`` events, which must all be 0
(overload costs latency, never correctness). Flat CPU per turn across sizes is the target.
"""

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from acf.bench.marks import Subject
from acf.bench.measure import Unanswered, outcomes, throughput


@dataclass(frozen=True, slots=True)
class SweepPoint:
    sessions: int
    turns_per_s: float
    cpu_ms_per_turn: float
    failed_turns: int
    fallback_replies: int
    lease_lost: int
    error: str | None = None
    """Why the point has no rate: turns not answered with their reply (then counted)."""

    @property
    def correct(self) -> bool:
        return self.error is None and not (self.failed_turns or self.fallback_replies)


async def point(make: Callable[[], Subject], sessions: int, timeout_s: float) -> SweepPoint:
    with tempfile.TemporaryDirectory(prefix="acf-sweep-") as tmp:
        subject = make()
        await subject.start(Path(tmp))
        try:
            cpu = time.process_time()
            error = None
            try:
                rate = await throughput(subject, sessions, timeout_s)
            except Unanswered as exc:  # counted and reported, not waited for
                rate, error = float("nan"), str(exc)
            cpu_ms = (time.process_time() - cpu) * 1000 / sessions
            counts = await outcomes(subject)
        finally:
            await subject.stop()
    return SweepPoint(
        sessions,
        rate,
        cpu_ms,
        counts.get("failed_turns", 0),
        subject.marks.unexpected,
        counts.get("lease_lost", 0),
        error,
    )


async def sweep(
    make: Callable[[], Subject], sizes: Sequence[int], timeout_s: float
) -> list[SweepPoint]:
    return [await point(make, n, timeout_s) for n in sizes]


def flatness(points: Sequence[SweepPoint]) -> float:
    """The largest CPU per turn over the smallest (1.0: perfectly flat)."""
    costs = [p.cpu_ms_per_turn for p in points if p.cpu_ms_per_turn > 0]
    return max(costs) / min(costs) if costs else float("nan")
