"""Admission: the slot limit halves when the event loop runs late, grows by an eighth while it
keeps up and sessions wait, and stays inside its bounds (issue 17)."""

import asyncio

import pytest

from acf.domain.admission import AdmissionBounds, next_limit, target_lag_ms
from acf.service.admission import AdmissionControl
from acf.service.fair_slots import FairSlots

BOUNDS = AdmissionBounds(low=8, high=256, target_lag_ms=100)


@pytest.mark.parametrize(
    ("limit", "lag_ms", "waiting", "expected"),
    [
        (256, 150.0, 0, 128),  # late: halve, waiting or not
        (256, 150.0, 500, 128),
        (12, 1_000.0, 500, 8),  # never below low
        (8, 1_000.0, 500, 8),
        (64, 10.0, 500, 72),  # keeping up with sessions waiting: + an eighth
        (5, 10.0, 1, 8),  # + at least one, and never below low
        (250, 10.0, 500, 256),  # never above high
        (64, 10.0, 0, 64),  # nobody waits: no reason to grow
        (64, 80.0, 500, 64),  # between half the target and the target: hold
        (64, 100.0, 500, 64),  # exactly the target is not late
        (300, 10.0, 0, 256),  # a total above the bounds comes back inside them
    ],
)
def test_next_limit(limit: int, lag_ms: float, waiting: int, expected: int) -> None:
    assert next_limit(limit, lag_ms, waiting, BOUNDS) == expected


@pytest.mark.parametrize(
    ("ttl_ms", "renew_every_ms", "expected"),
    [(15_000, 5_000, 100.0), (1_000, 300, 35.0), (5_000, 1_000, 100.0)],
)
def test_the_target_is_a_small_share_of_a_renewal_s_slack(
    ttl_ms: int, renew_every_ms: int, expected: float
) -> None:
    assert target_lag_ms(ttl_ms, renew_every_ms) == expected


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        AdmissionBounds(low=10, high=5, target_lag_ms=100)
    with pytest.raises(ValueError, match="positive"):
        AdmissionBounds(low=1, high=5, target_lag_ms=0)


async def test_control_resizes_the_slots_and_a_grown_total_admits_waiters_at_once() -> None:
    slots = FairSlots(total=2, per_tenant=10)
    control = AdmissionControl(slots, AdmissionBounds(low=1, high=4, target_lag_ms=100))
    gate = asyncio.Event()
    entered: list[int] = []

    async def session(i: int) -> None:
        async with slots.slot("t1"):
            entered.append(i)
            await gate.wait()

    tasks = [asyncio.create_task(session(i)) for i in range(5)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert (len(entered), slots.waiting_total()) == (2, 3)
    assert control.apply(10.0) == 3  # keeping up, sessions waiting: one more slot
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(entered) == 3
    assert control.apply(500.0) == 1  # late: halve; held slots stay held
    assert slots.in_use_total() == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert sorted(entered) == [0, 1, 2, 3, 4]  # the rest got in, one at a time
