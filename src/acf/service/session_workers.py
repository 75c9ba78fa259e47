"""At most one worker task per session in this process: the in-process fast path.

``poke`` starts the session's worker, or tells the running one that there is news. A
worker returns when it finds nothing to do; if it was poked meanwhile it starts again, so
no wake-up is lost between its last look and its exit. A worker may ask to be run again
after a delay (a lease held elsewhere, a provider to retry).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from acf.domain.ids import SessionId, TenantId
from acf.ports.clock import Clock
from acf.service.tasks import TaskSet

log = structlog.get_logger("acf.runtime")

Work = Callable[[TenantId, SessionId, asyncio.Event], Awaitable[int | None]]
"""Does the session's work; returns ``None`` when done, or milliseconds to wait and retry."""

CRASH_RETRY_MS = 1_000


class SessionWorkers:
    def __init__(self, name: str, tasks: TaskSet, clock: Clock, work: Work) -> None:
        self._name = name
        self._tasks = tasks
        self._clock = clock
        self._work = work
        self._news: dict[tuple[TenantId, SessionId], asyncio.Event] = {}
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._news)

    def active(self, tenant: TenantId, session_id: SessionId) -> bool:
        return (tenant, session_id) in self._news

    def poke(self, tenant: TenantId, session_id: SessionId) -> None:
        key = (tenant, session_id)
        news = self._news.get(key)
        if news is not None:
            news.set()
            return
        if self._tasks.closed or self._draining:
            return
        news = asyncio.Event()
        news.set()
        self._news[key] = news
        self._idle.clear()
        self._tasks.spawn(self._run(key, news), f"{self._name}:{session_id}")

    async def drain(self, grace_s: float) -> int:
        """Start no new work; wait up to ``grace_s`` for the running work to end. Returns
        how many sessions were still being worked on after the grace."""
        self._draining = True
        if self._news:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        return len(self._news)

    def poke_later(self, tenant: TenantId, session_id: SessionId, delay_ms: int) -> None:
        if not self._tasks.closed and not self._draining:
            self._tasks.spawn(self._later(tenant, session_id, delay_ms), f"{self._name}:later")

    async def _later(self, tenant: TenantId, session_id: SessionId, delay_ms: int) -> None:
        await self._clock.sleep(delay_ms / 1000)
        self.poke(tenant, session_id)

    async def _run(self, key: tuple[TenantId, SessionId], news: asyncio.Event) -> None:
        retry: int | None = None
        try:
            retry = await self._work(key[0], key[1], news)
        except asyncio.CancelledError:
            if self._tasks.closed:
                raise  # the runtime stops
            # A cancellation from inside the work (not ours): a bug, treated as a crash.
            log.error(f"{self._name}.cancelled", tenant=key[0], session_id=key[1])
            retry = CRASH_RETRY_MS
        except Exception as exc:  # the store failed or a bug: try again later, loudly
            log.error(f"{self._name}.crashed", tenant=key[0], session_id=key[1], error=repr(exc))
            retry = CRASH_RETRY_MS
        finally:
            del self._news[key]
            if not self._news:
                self._idle.set()
        if news.is_set():
            self.poke(*key)
        elif retry is not None:
            self.poke_later(key[0], key[1], retry)
