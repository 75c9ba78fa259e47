"""The three measurements of ``acf bench``, each run the same way on every subject.

- overhead: one message at a time (no queueing), ``acknowledged -> logic starts`` and
  ``logic ends -> delivery call``, p50 and p99 in milliseconds;
- throughput: one message to each of N sessions at once, turns per second from the first
  acknowledgement to the last delivery;
- memory: Python heap still held per session once N sessions went idle (tracemalloc).
"""

import asyncio
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from acf.bench.marks import Subject
from acf.stats import percentile

WARMUP = 20
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Overhead:
    to_start_p50_ms: float
    to_start_p99_ms: float
    to_delivery_p50_ms: float
    to_delivery_p99_ms: float


@dataclass(frozen=True, slots=True)
class Result:
    subject: str
    overhead: Overhead
    turns_per_s: float
    bytes_per_idle_session: float


async def _idle(subject: Subject) -> None:
    """Wait until the subject's background work (lease release, relay) is done."""
    while getattr(subject, "busy", 0):  # noqa: ASYNC110 - the runtime offers no idle event
        await asyncio.sleep(0.001)


async def _turn(subject: Subject, session: str, text: str) -> None:
    done = subject.marks.expect(text)
    await subject.receive(session, text)
    await done.wait()


async def overhead(subject: Subject, turns: int) -> Overhead:
    for i in range(WARMUP):
        await _turn(subject, f"warm{i}", f"warm-{i}")
    texts = [f"seq-{i}" for i in range(turns)]
    for i, text in enumerate(texts):
        await _turn(subject, f"o{i % 50}", text)
        await _idle(subject)
    m = subject.marks
    to_start = [(m.started[t] - m.acked[t]) * 1000 for t in texts]
    to_delivery = [(m.delivered[t] - m.ended[t]) * 1000 for t in texts]
    return Overhead(
        percentile(to_start, 50),
        percentile(to_start, 99),
        percentile(to_delivery, 50),
        percentile(to_delivery, 99),
    )


async def throughput(subject: Subject, sessions: int) -> float:
    texts = [f"tp-{i}" for i in range(sessions)]
    events = [subject.marks.expect(t) for t in texts]
    began = time.perf_counter()
    await asyncio.gather(*(subject.receive(f"tp{i}", t) for i, t in enumerate(texts)))
    await asyncio.gather(*(e.wait() for e in events))
    return sessions / (time.perf_counter() - began)


async def memory_per_session(subject: Subject, sessions: int) -> float:
    await _turn(subject, "mem-warm", "mem-warm")
    await _idle(subject)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    texts = [f"mem-{i}" for i in range(sessions)]
    events = [subject.marks.expect(t) for t in texts]
    await asyncio.gather(*(subject.receive(f"mem{i}", t) for i, t in enumerate(texts)))
    await asyncio.gather(*(e.wait() for e in events))
    await _idle(subject)
    # The marks are the benchmark's own bookkeeping, not the subject's: drop them, and copy
    # the emptied dicts (they keep their size) so only the subject's memory is left.
    m = subject.marks
    for text in texts:
        for book in (m.acked, m.started, m.ended, m.delivered):
            book.pop(text, None)
    m.acked, m.started, m.ended = dict(m.acked), dict(m.started), dict(m.ended)
    m.delivered, m.waiters = dict(m.delivered), dict(m.waiters)
    del texts, events
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    return max(0.0, (after - before) / sessions)


async def _fresh(
    make: Callable[[], Subject], folder: Path, run: Callable[[Subject], Awaitable[T]]
) -> T:
    """``run`` on a new subject started in ``folder``, stopped afterwards."""
    await asyncio.to_thread(folder.mkdir)
    subject = make()
    await subject.start(folder)
    try:
        return await run(subject)
    finally:
        await subject.stop()


async def measure(
    make: Callable[[], Subject], turns: int, sessions: int, memory_sessions: int
) -> Result:
    """Each measurement on a fresh subject and a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="acf-bench-") as tmp:
        folder = Path(tmp)
        over = await _fresh(make, folder / "o", lambda s: overhead(s, turns))
        rate = await _fresh(make, folder / "t", lambda s: throughput(s, sessions))
        tracemalloc.start()
        try:
            per_session = await _fresh(
                make, folder / "m", lambda s: memory_per_session(s, memory_sessions)
            )
        finally:
            tracemalloc.stop()
    return Result(make().name, over, rate, per_session)
