"""The observed unit of work: observers see committed events; one failing observer keeps
neither the commit nor the other observers from their work."""

import asyncio
from collections.abc import Sequence
from typing import Any

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.event_store import AppendEvent
from acf.ports.unit_of_work import CommitResults, WriteOp
from acf.service.event_feed import EventFeed, ObservedUnitOfWork


class FakeUnitOfWork:
    async def commit(self, tenant: str, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        return CommitResults(ops, [i + 7 for i in range(len(ops))])


def event() -> FabricEvent:
    return FabricEvent(EventKind.TURN_STARTED, 1, Correlation("t1", "tr"))


async def test_a_failing_observer_does_not_silence_the_next_one() -> None:
    seen: list[int | None] = []
    woken: list[str] = []

    def broken(events: Sequence[FabricEvent]) -> None:
        raise RuntimeError("observer bug")

    def hook_broken(tenant: str) -> None:
        raise RuntimeError("hook bug")

    uow = ObservedUnitOfWork(
        FakeUnitOfWork(),
        [broken, lambda events: seen.extend(e.event_id for e in events)],
        on_commit=[hook_broken, woken.append],
    )
    op = AppendEvent(event())
    results = await uow.commit("t1", [op])
    assert results.get(op) == 7
    assert seen == [7]  # with the id the store gave
    assert woken == ["t1"]


async def test_a_ticket_taken_before_a_commit_is_woken_by_it() -> None:
    feed = EventFeed()
    ticket = feed.ticket("t1")
    other = feed.ticket("t2")
    feed.wake("t1")
    await asyncio.wait_for(feed.wait(ticket, 5), 1)
    assert ticket.is_set() and not other.is_set()
    assert feed.ticket("t1") is not ticket  # the next reader waits for the next commit
