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
    def __init__(
        self,
        inner: UnitOfWork,
        listeners: Sequence[Listener] = (),
        on_commit: Sequence[Callable[[TenantId], None]] = (),
    ) -> None:
        self._inner = inner
        self._listeners = list(listeners)
        self._on_commit = list(on_commit)

    async def commit(self, tenant: TenantId, ops: Sequence[WriteOp[Any]]) -> CommitResults:
        results = await self._inner.commit(tenant, ops)
        for hook in self._on_commit:
            _safely(hook, tenant)
        events = [
            replace(op.event, event_id=results.get(op)) for op in ops if isinstance(op, AppendEvent)
        ]
        if results.written_events:  # in the order they were written
            events = sorted([*events, *results.written_events], key=lambda e: e.event_id or 0)
        if events:
            for listener in self._listeners:
                _safely(listener, events)
        return results


def _safely(observer: Callable[[Any], None], value: Any) -> None:
    """An observer never breaks a committed unit, nor keeps the next observer from seeing it."""
    try:
        observer(value)
    except Exception as exc:
        log.warning("event_feed.listener_failed", observer=repr(observer), error=repr(exc))


class EventFeed:
    """Wakes the streams of a tenant when one of its units committed in this process (the
    adapters record some events themselves, a message's arrival for one)."""

    def __init__(self) -> None:
        self._news: dict[TenantId, asyncio.Event] = {}

    def ticket(self, tenant: TenantId) -> asyncio.Event:
        """Take before reading the store: a commit after that sets it, so no news that
        lands between the read and the wait is missed."""
        return self._news.setdefault(tenant, asyncio.Event())

    def wake(self, tenant: TenantId) -> None:
        news = self._news.pop(tenant, None)
        if news is not None:
            news.set()

    @staticmethod
    async def wait(ticket: asyncio.Event, timeout_s: float) -> None:
        """Return when ``ticket`` is set, or after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), timeout_s)
