"""A virtual clock: time moves only when a test says so."""

import asyncio
import heapq
import itertools


class VirtualClock:
    """Implements the ``Clock`` port. ``advance`` moves time and wakes due sleepers."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._now_ms / 1000.0

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self._now_ms + round(seconds * 1000)
        heapq.heappush(self._sleepers, (due, next(self._order), future))
        await future

    def next_due_ms(self) -> int | None:
        """When the earliest pending sleeper is due, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to(self, at_ms: int) -> None:
        """Move time forward to ``at_ms`` (no-op if it is in the past)."""
        if at_ms > self._now_ms:
            self.advance(at_ms - self._now_ms)

    def advance(self, ms: int) -> None:
        """Move time forward by ``ms`` and release every sleeper now due."""
        if ms < 0:
            raise ValueError("a clock never goes backwards")
        self._now_ms += ms
        while self._sleepers and self._sleepers[0][0] <= self._now_ms:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
