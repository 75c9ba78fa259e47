"""In-process wake-ups: one unbounded queue per subscriber, coalesced per session."""

import asyncio

from acf.domain.ids import SessionId, TenantId
from acf.ports.wakeup import WakeUp


class InProcessSubscription:
    """Registered on creation, so nothing published after ``subscribe()`` is missed."""

    def __init__(self, owner: "InProcessWakeUps") -> None:
        self._owner = owner
        self._queue: asyncio.Queue[WakeUp] = asyncio.Queue()
        self._pending: set[WakeUp] = set()

    def offer(self, wake: WakeUp) -> None:
        if wake not in self._pending:  # one queued wake-up per session is enough
            self._pending.add(wake)
            self._queue.put_nowait(wake)

    def __aiter__(self) -> "InProcessSubscription":
        return self

    async def __anext__(self) -> WakeUp:
        wake = await self._queue.get()
        self._pending.discard(wake)
        return wake

    def close(self) -> None:
        self._owner.unsubscribe(self)


class InProcessWakeUps:
    def __init__(self) -> None:
        self._subscribers: list[InProcessSubscription] = []

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        wake = WakeUp(tenant, session_id)
        for sub in self._subscribers:
            sub.offer(wake)

    def subscribe(self) -> InProcessSubscription:
        sub = InProcessSubscription(self)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: InProcessSubscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
