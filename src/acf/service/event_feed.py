"""What the process committed, told to whoever watches: metrics and live event streams.

``ObservedUnitOfWork`` wraps the store's unit of work: after a unit commits, the events it
appended (with their ids) go to every listener. ``EventFeed`` is one such listener that
wakes the streams waiting for news; a stream then reads the store, which stays the truth
(another process's events reach it on its next poll).
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import structlog

from acf.domain.events import FabricEvent
from acf.domain.ids import TenantId
from acf.ports.event_store import AppendEvent
from acf.ports.unit_of_work import CommitResults, UnitOfWork, WriteOp

log = structlog.get_logger("acf.event_feed")

Listener = Callable[[Sequence[FabricEvent]], None]


class ObservedUnitOfWork:
    def __init__(self, inner: UnitOfWork, listeners: Sequence[Listener] = ()) -> None:
        self._inner = inner
        self._listeners = list(listeners)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def commit(self, tenant: TenantId, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        results = await self._inner.commit(tenant, ops)
        events = [
            replace(op.event, event_id=results.get(op)) for op in ops if isinstance(op, AppendEvent)
        ]
        if events:
            for listener in self._listeners:
                try:
                    listener(events)
                except Exception as exc:  # an observer never breaks a committed unit
                    log.warning("event_feed.listener_failed", error=repr(exc))
        return results


class EventFeed:
    """Wakes waiters when events of a tenant were committed in this process."""

    def __init__(self) -> None:
        self._waiters: dict[TenantId, asyncio.Event] = {}

    def __call__(self, events: Sequence[FabricEvent]) -> None:
        for tenant in {e.tenant for e in events}:
            waiter = self._waiters.pop(tenant, None)
            if waiter is not None:
                waiter.set()

    async def wait(self, tenant: TenantId, timeout_s: float) -> None:
        """Return when the tenant has new events, or after ``timeout_s``."""
        waiter = self._waiters.setdefault(tenant, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout_s)
