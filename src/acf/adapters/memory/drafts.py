"""Drafts in one process (the embedded mode, and each process's local delivery in the
distributed one): subscriptions per tenant and session, each a bounded buffer."""

import asyncio
from collections import deque

from acf.domain.ids import SessionId, TenantId
from acf.ports.drafts import Draft

MAX_BUFFERED = 256
"""Drafts a subscription keeps for a reader that does not keep up; older ones are lost."""


class InProcessDraftSubscription:
    """Registered on creation, so nothing published after ``subscribe()`` is missed."""

    def __init__(self, owner: "InProcessDraftBus", where: tuple[TenantId, SessionId]) -> None:
        self._owner = owner
        self._where = where
        self._buffer: deque[Draft] = deque(maxlen=MAX_BUFFERED)
        self._ready = asyncio.Event()

    def offer(self, draft: Draft) -> None:
        self._buffer.append(draft)
        self._ready.set()

    def drain(self) -> list[Draft]:
        drafts = list(self._buffer)
        self._buffer.clear()
        self._ready.clear()
        return drafts

    async def wait(self) -> None:
        await self._ready.wait()

    def close(self) -> None:
        self._owner.unsubscribe(self._where, self)


class InProcessDraftBus:
    """Implements ``DraftBus`` within one process: ``publish`` hands the draft to every
    subscription of its session at once."""

    def __init__(self) -> None:
        self._subscribers: dict[tuple[TenantId, SessionId], list[InProcessDraftSubscription]] = {}

    def publish(self, draft: Draft) -> None:
        for sub in self._subscribers.get((draft.tenant, draft.session_id), ()):
            sub.offer(draft)

    def subscribe(self, tenant: TenantId, session_id: SessionId) -> InProcessDraftSubscription:
        where = (tenant, session_id)
        sub = InProcessDraftSubscription(self, where)
        self._subscribers.setdefault(where, []).append(sub)
        return sub

    def unsubscribe(
        self, where: tuple[TenantId, SessionId], sub: InProcessDraftSubscription
    ) -> None:
        subs = self._subscribers.get(where)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subscribers[where]

    @property
    def watched(self) -> int:
        """How many sessions have a subscriber (for tests and metrics)."""
        return len(self._subscribers)
