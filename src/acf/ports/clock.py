"""Clock: the one source of time for deadlines, so tests can run on a virtual clock."""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Wall time in milliseconds since the epoch and a monotonic reading in seconds.

    Guarantees: ``monotonic`` never goes backwards; ``sleep`` returns no earlier than the
    clock has advanced by ``seconds``. Stored deadlines are compared with ``now_ms``.
    """

    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...
