"""The figures of the distributed benchmark: overhead and throughput measured on one started
subject, each measurement bounded in time.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from acf.bench.cpu import CpuMeter
from acf.bench.marks import Marks, Subject
from acf.bench.measure import Overhead, overhead, throughput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Figures:
    subject: str
    overhead: Overhead
    turns_per_s: float
    cpu_ms_per_turn: dict[str, float] = field(default_factory=dict)
    """The throughput run's CPU per turn, per process (and PostgreSQL's, and the total)."""


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
    subject: Subject,
    turns: int,
    sessions: int,
    timeout_s: float,
    folder: Path,
    processes: Mapping[str, int] | None = None,
    settle: Callable[[], Awaitable[None]] | None = None,
) -> Figures:
    """Start ``subject`` in ``folder``, measure its overhead then its throughput, stop it.

    ``processes`` (label → pid): whose CPU the throughput run is charged with, beside this
    process (the client, the sink, an in-process subject) and PostgreSQL. ``settle``: run
    between the two measurements (outside both)."""
    await subject.start(folder)
    meter = CpuMeter({"benchmark process": os.getpid(), **(processes or {})})
    try:
        over = await _bounded(
            "overhead", subject.marks, overhead(subject, turns, timeout_s), timeout_s
        )
        if settle is not None:
            await settle()
        meter.start()
        rate = await _bounded(
            "throughput", subject.marks, throughput(subject, sessions, timeout_s), timeout_s
        )
        cpu = meter.per_turn_ms(sessions)
    finally:
        await subject.stop()
    return Figures(subject.name, over, rate, cpu)
