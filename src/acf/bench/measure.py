"""The three measurements of ``acf bench``, each run the same way on every subject.

- overhead: one message at a time (no queueing), ``acknowledged -> logic starts`` and
  ``logic ends -> delivery call``, p50 and p99 in milliseconds;
- throughput: one message to each of N sessions at once, turns per second from the first
  acknowledgement to the last delivery;
- memory: Python heap still held per session once N sessions went idle (tracemalloc).

Every wait is bounded (``timeout_s``) and ends early once every awaited turn is answered
or answered otherwise (a fallback of a failed turn): a run never hangs, and the turns that
failed or got the fallback are counted and reported, never waited for.
"""

import asyncio
import contextlib
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from acf.bench.marks import Accountable, Marks, Subject
from acf.stats import percentile

WARMUP = 20
DEFAULT_TIMEOUT_S = 600.0
"""The longest any one measurement may wait for its replies."""
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
    failed_turns: int = 0
    """Turns that ended FAILED (from the subject's records) in the throughput run."""
    fallback_replies: int = 0
    """Replies in the throughput run that answered no message: a failed turn's fallback."""
    lease_lost: int = 0


class Unanswered(RuntimeError):
    """Turns were not answered with their real reply within the time allowed."""


async def answered(marks: Marks, texts: Sequence[str], what: str, timeout_s: float) -> None:
    """Wait until every one of ``texts`` (each awaited with ``marks.expect``) got its reply.
    Raises :class:`Unanswered` after ``timeout_s``, or as soon as the replies that answer
    nothing (fallbacks) account for every turn still missing: those will never come.

    It sleeps until a delivery wakes it (``marks.progress``) and then counts in constant
    time, so the wait takes no CPU from the subject it measures on the same event loop (a
    polling wait here made the overhead figures about 2.5 ms worse)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout_s
    # Counted once; from then on each awaited delivery lowers it by one (a reply pops its
    # waiter, so it is counted once; the measurements await one batch of texts at a time).
    pending = sum(1 for t in texts if t in marks.waiters)
    unexpected_before, delivered_before = marks.unexpected, len(marks.delivered)
    while True:
        missing = pending - (len(marks.delivered) - delivered_before)
        if missing <= 0:
            return
        others = marks.unexpected - unexpected_before
        left = give_up - loop.time()
        if others >= missing or left <= 0:
            why = "answered otherwise" if others >= missing else f"after {timeout_s:.0f} s"
            first = [t for t in texts if t in marks.waiters][:5]
            raise Unanswered(
                f"{what}: {missing} of {len(texts)} turn(s) not answered with their "
                f"reply ({why}); {others} other repl(ies) delivered meanwhile, such as a "
                f"failed turn's fallback (first missing: {first})"
            )
        marks.progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(marks.progress.wait(), left)


async def _idle(subject: Subject) -> None:
    """Wait until the subject's background work (lease release, relay) is done."""
    while getattr(subject, "busy", 0):  # noqa: ASYNC110 - the runtime offers no idle event
        await asyncio.sleep(0.001)


async def _turn(subject: Subject, session: str, text: str, timeout_s: float) -> None:
    subject.marks.expect(text)
    await subject.receive(session, text)
    await answered(subject.marks, [text], "overhead", timeout_s)


async def overhead(subject: Subject, turns: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> Overhead:
    for i in range(WARMUP):
        await _turn(subject, f"warm{i}", f"warm-{i}", timeout_s)
    texts = [f"seq-{i}" for i in range(turns)]
    for i, text in enumerate(texts):
        await _turn(subject, f"o{i % 50}", text, timeout_s)
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


async def throughput(
    subject: Subject, sessions: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> float:
    """Turns per second: one message to each of ``sessions`` sessions at once, from the
    first message sent to the last reply delivered."""
    texts = [f"tp-{i}" for i in range(sessions)]
    for text in texts:
        subject.marks.expect(text)
    began = time.perf_counter()
    await asyncio.gather(*(subject.receive(f"tp{i}", t) for i, t in enumerate(texts)))
    await answered(subject.marks, texts, "throughput", timeout_s)
    last = max(subject.marks.delivered.get(t, began) for t in texts)
    return sessions / (last - began) if last > began else float("nan")


async def outcomes(subject: Subject) -> dict[str, int]:
    """What the subject's own records say of its turns (nothing for one that keeps none)."""
    return await subject.outcomes() if isinstance(subject, Accountable) else {}


async def memory_per_session(
    subject: Subject, sessions: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> float:
    await _turn(subject, "mem-warm", "mem-warm", timeout_s)
    await _idle(subject)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    texts = [f"mem-{i}" for i in range(sessions)]
    events = [subject.marks.expect(t) for t in texts]
    await asyncio.gather(*(subject.receive(f"mem{i}", t) for i, t in enumerate(texts)))
    await answered(subject.marks, texts, "memory", timeout_s)
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


async def _counted_throughput(
    subject: Subject, sessions: int, timeout_s: float
) -> tuple[float, dict[str, int]]:
    """Throughput, and how the subject's turns ended: counted also when some were not
    answered (then :class:`Unanswered` says how many failed)."""
    try:
        rate = await throughput(subject, sessions, timeout_s)
    except Unanswered as exc:
        counts = await outcomes(subject)
        raise Unanswered(f"{exc}; the subject's records: {counts or 'none kept'}") from None
    counts = await outcomes(subject)
    counts["fallback_replies"] = subject.marks.unexpected
    return rate, counts


async def measure(
    make: Callable[[], Subject],
    turns: int,
    sessions: int,
    memory_sessions: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Result:
    """Each measurement on a fresh subject and a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="acf-bench-") as tmp:
        folder = Path(tmp)
        over = await _fresh(make, folder / "o", lambda s: overhead(s, turns, timeout_s))
        rate, counts = await _fresh(
            make, folder / "t", lambda s: _counted_throughput(s, sessions, timeout_s)
        )
        tracemalloc.start()
        try:
            per_session = await _fresh(
                make, folder / "m", lambda s: memory_per_session(s, memory_sessions, timeout_s)
            )
        finally:
            tracemalloc.stop()
    return Result(
        make().name,
        over,
        rate,
        per_session,
        failed_turns=counts.get("failed_turns", 0),
        fallback_replies=counts.get("fallback_replies", 0),
        lease_lost=counts.get("lease_lost", 0),
    )
