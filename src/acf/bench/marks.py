"""What every subject of the benchmark offers: its :class:`Marks` (when each message was
acknowledged, its logic started and ended, its reply delivered) and the :class:`Subject`
interface the measurements drive, and :class:`Accountable`, a subject that can count its
failed turns.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(slots=True)
class Marks:
    """perf_counter() readings per message text."""

    acked: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    unexpected: int = 0
    """Replies that answer no awaited text: fallbacks of failed turns (or repeats)."""
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by every delivery, awaited or not: a waiter wakes only when something arrived."""

    def deliver(self, text: str) -> None:
        self.progress.set()
        waiter = self.waiters.pop(text, None)
        if waiter is None:
            self.unexpected += 1
            return
        self.delivered[text] = time.perf_counter()
        waiter.set()

    def expect(self, text: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters[text] = event
        return event


@runtime_checkable
class Accountable(Protocol):
    """A subject that can say from its own records how its turns ended."""

    async def outcomes(self) -> dict[str, int]:
        """Counts such as ``failed_turns`` and ``lease_lost`` (events) so far."""
        ...


class Subject(Protocol):
    name: str
    marks: Marks

    async def start(self, folder: Path) -> None: ...

    async def receive(self, session: str, text: str) -> None: ...

    async def stop(self) -> None: ...
