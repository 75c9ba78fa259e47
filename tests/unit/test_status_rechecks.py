"""A delivery status that names no recorded reply yet is looked up again over growing
pauses (on a virtual clock), applied once found, and dropped after the last pause."""

import asyncio

import pytest

from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal
from acf.service.status_rechecks import StatusRechecks
from acf.testing.clock import VirtualClock

SIGNAL = DeliveryStatusSignal("acme", "wamid.1", DeliveryStatus.DELIVERED, 0)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("found_on_try", "tries"),
    [(1, 1), (3, 3), (4, 4), (None, 4)],  # None: never found: every pause, then dropped
)
async def test_it_tries_after_each_pause_until_found(found_on_try: int | None, tries: int) -> None:
    clock = VirtualClock()
    rechecks = StatusRechecks(clock, pauses_ms=(100, 200, 400, 800))
    tried: list[int] = []

    async def apply(signal: DeliveryStatusSignal) -> bool:
        tried.append(clock.now_ms())
        return len(tried) == found_on_try

    assert rechecks.schedule(SIGNAL, apply)
    await settle()
    for _ in range(4):
        clock.advance(1_000)
        await settle()
    assert len(tried) == tries
    assert rechecks.pending == 0


async def test_pauses_grow_and_nothing_is_tried_before_the_first() -> None:
    clock = VirtualClock()
    rechecks = StatusRechecks(clock, pauses_ms=(100, 200))
    tried: list[int] = []

    async def apply(signal: DeliveryStatusSignal) -> bool:
        tried.append(clock.now_ms())
        return False

    start = clock.now_ms()
    rechecks.schedule(SIGNAL, apply)
    await settle()
    clock.advance(99)
    await settle()
    assert tried == []
    clock.advance(1)
    await settle()
    clock.advance(200)
    await settle()
    assert [t - start for t in tried] == [100, 300]


async def test_beyond_the_limit_a_status_is_dropped_and_close_stops_the_waiting() -> None:
    clock = VirtualClock()
    rechecks = StatusRechecks(clock, pauses_ms=(100,), max_pending=2)

    async def never(signal: DeliveryStatusSignal) -> bool:
        return False

    assert rechecks.schedule(SIGNAL, never) and rechecks.schedule(SIGNAL, never)
    assert not rechecks.schedule(SIGNAL, never)
    await rechecks.close()
    assert rechecks.pending == 0


async def test_a_failing_lookup_ends_the_recheck() -> None:
    clock = VirtualClock()
    rechecks = StatusRechecks(clock, pauses_ms=(100, 200))
    calls = 0

    async def broken(signal: DeliveryStatusSignal) -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("the store is closed")

    rechecks.schedule(SIGNAL, broken)
    await settle()
    clock.advance(1_000)
    await settle()
    assert calls == 1 and rechecks.pending == 0
