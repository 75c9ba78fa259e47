"""What every subject of the benchmark offers: its :class:`Marks` (when each message was
acknowledged, its logic started and ended, its reply delivered) and the :class:`Subject`
interface the measurements drive.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(slots=True)
class Marks:
    """perf_counter() readings per message text."""

    acked: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def deliver(self, text: str) -> None:
        self.delivered[text] = time.perf_counter()
        waiter = self.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()

    def expect(self, text: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters[text] = event
        return event


class Subject(Protocol):
    name: str
    marks: Marks

    async def start(self, folder: Path) -> None: ...

    async def receive(self, session: str, text: str) -> None: ...

    async def stop(self) -> None: ...
