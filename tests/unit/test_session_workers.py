"""One worker per session, and no wake-up lost between a worker's last look and its exit."""

import asyncio

from acf.service.session_workers import SessionWorkers
from acf.service.tasks import TaskSet
from acf.testing import VirtualClock


async def test_one_worker_per_session_and_a_late_poke_restarts_it() -> None:
    tasks, clock = TaskSet(), VirtualClock()
    runs: list[str] = []
    gate = asyncio.Event()

    async def work(tenant: str, session_id: str, news: asyncio.Event) -> int | None:
        news.clear()
        runs.append(session_id)
        await gate.wait()
        return None

    workers = SessionWorkers("w", tasks, clock, work)
    workers.poke("t", "s1")
    workers.poke("t", "s1")  # coalesced into the running worker's news
    workers.poke("t", "s2")
    await asyncio.sleep(0)
    assert sorted(runs) == ["s1", "s2"] and len(workers) == 2
    workers.poke("t", "s1")  # arrives after s1 looked: it must run once more
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert sorted(runs) == ["s1", "s1", "s2"]
    assert len(workers) == 0
    await tasks.cancel_all()


async def test_retry_after_a_delay_and_after_a_crash() -> None:
    tasks, clock = TaskSet(), VirtualClock()
    calls = 0

    async def work(tenant: str, session_id: str, news: asyncio.Event) -> int | None:
        nonlocal calls
        calls += 1
        news.clear()
        if calls == 1:
            return 500  # "try again in 500 ms"
        if calls == 2:
            raise RuntimeError("store hiccup")
        return None

    workers = SessionWorkers("w", tasks, clock, work)
    workers.poke("t", "s")
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == 1
    clock.advance(499)
    await asyncio.sleep(0)
    assert calls == 1
    clock.advance(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == 2
    clock.advance(1_000)
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == 3
    await tasks.cancel_all()
