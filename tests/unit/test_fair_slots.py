"""Fair work slots: caps hold, round-robin across tenants, FIFO within one, nothing leaks."""

import asyncio

import pytest

from acf.service.fair_slots import FairSlots


async def settle() -> None:
    """Let every ready task run until all wait again (no timing involved)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Harness:
    """Sessions that take a slot, record the grant, and hold it until told to finish."""

    def __init__(self, slots: FairSlots) -> None:
        self.slots = slots
        self.granted: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self._running: dict[str, int] = {}
        self.max_running: dict[str, int] = {}
        self.max_running_total = 0

    def start(self, tenant: str, name: str) -> None:
        gate = self._gates[name] = asyncio.Event()

        async def session() -> None:
            async with self.slots.slot(tenant):
                self.granted.append(name)
                self._running[tenant] = self._running.get(tenant, 0) + 1
                self.max_running[tenant] = max(
                    self.max_running.get(tenant, 0), self._running[tenant]
                )
                self.max_running_total = max(self.max_running_total, sum(self._running.values()))
                try:
                    await gate.wait()
                finally:
                    self._running[tenant] -= 1

        self.tasks[name] = asyncio.get_running_loop().create_task(session(), name=name)

    def finish(self, name: str) -> None:
        self._gates[name].set()

    async def finish_all_in_grant_order(self) -> None:
        await settle()
        done = 0
        while done < len(self.granted):
            self.finish(self.granted[done])
            done += 1
            await settle()
        assert all(task.done() for task in self.tasks.values())


@pytest.mark.parametrize(("total", "per_tenant"), [(0, 1), (1, 0), (-1, 1), (1, -5)])
def test_arguments_are_validated(total: int, per_tenant: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairSlots(total, per_tenant)


async def test_per_tenant_cap_holds() -> None:
    slots = FairSlots(total=10, per_tenant=2)
    h = Harness(slots)
    for i in range(5):
        h.start("a", f"a{i}")
    h.start("b", "b0")
    await settle()
    assert h.granted == ["a0", "a1", "b0"]
    assert (slots.in_use("a"), slots.waiting("a")) == (2, 3)
    assert (slots.in_use("b"), slots.waiting("b")) == (1, 0)
    assert (slots.in_use_total(), slots.waiting_total()) == (3, 3)
    await h.finish_all_in_grant_order()
    assert h.granted == ["a0", "a1", "b0", "a2", "a3", "a4"]
    assert h.max_running == {"a": 2, "b": 1}
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)


async def test_total_cap_holds() -> None:
    slots = FairSlots(total=3, per_tenant=3)
    h = Harness(slots)
    for tenant in "abcd":
        for i in range(3):
            h.start(tenant, f"{tenant}{i}")
    await settle()
    assert h.granted == ["a0", "a1", "a2"]
    assert (slots.in_use_total(), slots.waiting_total()) == (3, 9)
    await h.finish_all_in_grant_order()
    assert h.max_running_total == 3
    assert sorted(h.granted) == sorted(h.tasks)
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)


async def test_round_robin_across_a_big_tenant_and_small_ones() -> None:
    slots = FairSlots(total=1, per_tenant=100)
    h = Harness(slots)
    h.start("big", "x")
    for i in range(5):
        h.start("big", f"b{i}")
    h.start("s", "s0")
    h.start("t", "t0")
    h.start("t", "t1")
    await settle()
    assert h.granted == ["x"]
    await h.finish_all_in_grant_order()
    assert h.granted == ["x", "b0", "s0", "t0", "b1", "t1", "b2", "b3", "b4"]


async def test_a_small_tenant_is_not_starved_by_a_thousand_queued_sessions() -> None:
    slots = FairSlots(total=2, per_tenant=1_000)
    h = Harness(slots)
    for i in range(1_000):
        h.start("big", f"b{i}")
    await settle()
    assert h.granted == ["b0", "b1"] and slots.waiting("big") == 998
    h.start("small", "s0")
    await settle()
    h.finish("b0")
    await settle()
    assert h.granted == ["b0", "b1", "b2"]  # big was in line first: one of its sessions
    h.finish("b1")
    await settle()
    assert h.granted == ["b0", "b1", "b2", "s0"]  # then the small tenant, at once
    h.finish("s0")
    h.finish("b2")
    await settle()
    assert h.granted[-2:] == ["b3", "b4"]


async def test_a_tenant_skipped_at_its_cap_keeps_its_place_in_line() -> None:
    slots = FairSlots(total=2, per_tenant=1)
    h = Harness(slots)
    h.start("a", "a0")
    h.start("b", "b0")
    h.start("a", "a1")
    h.start("b", "b1")
    h.start("c", "c0")
    await settle()
    assert h.granted == ["a0", "b0"]
    h.finish("b0")  # a is first in line but at its cap: b goes, a stays first
    await settle()
    assert h.granted == ["a0", "b0", "b1"]
    h.finish("b1")  # a still at its cap, b has nobody left: c
    await settle()
    assert h.granted == ["a0", "b0", "b1", "c0"]
    h.finish("a0")
    await settle()
    assert h.granted == ["a0", "b0", "b1", "c0", "a1"]
    await h.finish_all_in_grant_order()
    assert h.max_running == {"a": 1, "b": 1, "c": 1} and h.max_running_total == 2


async def test_fifo_within_a_tenant() -> None:
    slots = FairSlots(total=4, per_tenant=1)
    h = Harness(slots)
    names = [f"a{i}" for i in range(8)]
    for name in names:
        h.start("a", name)
    await h.finish_all_in_grant_order()
    assert h.granted == names


async def test_cancelling_a_waiter_removes_it() -> None:
    slots = FairSlots(total=1, per_tenant=1)
    h = Harness(slots)
    h.start("a", "x")
    h.start("a", "a1")
    h.start("b", "b1")
    h.start("a", "a2")
    await settle()
    assert (slots.waiting("a"), slots.waiting("b")) == (2, 1)
    h.tasks["a1"].cancel()
    await settle()
    assert h.tasks["a1"].cancelled()
    assert (slots.waiting("a"), slots.waiting("b"), slots.waiting_total()) == (1, 1, 2)
    await h.finish_all_in_grant_order()
    assert h.granted == ["x", "a2", "b1"]  # a joined the line first and keeps its place
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)


async def test_a_cancelled_waiter_not_yet_cleaned_up_is_skipped() -> None:
    slots = FairSlots(total=1, per_tenant=1)
    h = Harness(slots)
    holder = slots.slot("a")
    await holder.__aenter__()
    h.start("b", "b1")
    h.start("c", "c1")
    await settle()
    h.tasks["b1"].cancel()  # cancelled, but its task has not run its cleanup yet...
    await holder.__aexit__(None, None, None)  # ...when the slot frees: c gets it, not b1
    assert (slots.in_use("b"), slots.in_use("c"), slots.waiting_total()) == (0, 1, 0)
    await settle()
    assert h.tasks["b1"].cancelled()
    assert h.granted == ["c1"]
    await h.finish_all_in_grant_order()
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)


async def test_a_waiter_cancelled_after_being_chosen_passes_the_slot_on() -> None:
    slots = FairSlots(total=1, per_tenant=1)
    h = Harness(slots)
    holder = slots.slot("a")
    await holder.__aenter__()
    h.start("b", "b1")
    h.start("c", "c1")
    h.start("b", "b2")
    await settle()
    assert slots.waiting_total() == 3
    await holder.__aexit__(None, None, None)  # frees the slot: b1 is chosen...
    assert (slots.in_use("b"), slots.waiting("b"), slots.waiting("c")) == (1, 1, 1)
    h.tasks["b1"].cancel()  # ...and cancelled before it ever runs
    await settle()
    assert h.tasks["b1"].cancelled()
    assert h.granted == ["c1"]  # the next in line got the slot
    assert (slots.in_use("b"), slots.in_use("c"), slots.in_use_total()) == (0, 1, 1)
    await h.finish_all_in_grant_order()
    assert h.granted == ["c1", "b2"]
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)


async def test_no_slot_leaks_after_an_exception_or_a_cancellation_in_the_body() -> None:
    slots = FairSlots(total=1, per_tenant=1)

    async def fail() -> None:
        async with slots.slot("a"):
            assert slots.in_use("a") == 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert (slots.in_use("a"), slots.in_use_total()) == (0, 0)

    h = Harness(slots)
    h.start("a", "a1")
    h.start("b", "b1")
    await settle()
    h.tasks["a1"].cancel()  # cancelled while holding the slot
    await settle()
    assert h.tasks["a1"].cancelled()
    assert h.granted == ["a1", "b1"] and slots.in_use("a") == 0
    await h.finish_all_in_grant_order()
    async with slots.slot("a"):  # capacity is whole again
        assert slots.in_use_total() == 1
    assert (slots.in_use_total(), slots.waiting_total()) == (0, 0)
