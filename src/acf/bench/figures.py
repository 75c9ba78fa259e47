"""The figures of the distributed benchmark: overhead and throughput measured on one started
subject, each measurement bounded in time.
"""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from acf.bench.marks import Marks, Subject
from acf.bench.measure import Overhead, overhead, throughput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Figures:
    subject: str
    overhead: Overhead
    turns_per_s: float


async def _bounded(what: str, marks: Marks, work: Awaitable[T], timeout_s: float) -> T:
    try:
        return await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        missing = sorted(marks.waiters)
        raise RuntimeError(
            f"{what}: {len(missing)} turn(s) not delivered after {timeout_s:.0f} s "
            f"(first: {missing[:5]})"
        ) from None


async def measure_figures(
    subject: Subject, turns: int, sessions: int, timeout_s: float, folder: Path
) -> Figures:
    """Start ``subject`` in ``folder``, measure its overhead then its throughput, stop it."""
    await subject.start(folder)
    try:
        over = await _bounded("overhead", subject.marks, overhead(subject, turns), timeout_s)
        rate = await _bounded("throughput", subject.marks, throughput(subject, sessions), timeout_s)
    finally:
        await subject.stop()
    return Figures(subject.name, over, rate)
