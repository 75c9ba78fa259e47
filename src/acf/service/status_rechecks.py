"""Delivery statuses that came before acf recorded the message they name.

A provider reports statuses from a system apart from the one that answers the send, so a
``delivered`` can reach acf before the relay has committed the provider's acceptance (the
id the status names): then no reply has that id yet. Such a status is looked up again in
the background, over growing pauses, and applied once the relay's record is there; one
that still names nothing after the last pause is another sender's message, and is dropped.

The webhook is answered at once (a provider must not wait, and Meta would send it again);
what stays open is in this process, so a status is lost only if the process stops within
the pauses, and then the reply keeps the status the relay recorded (``sent``).
"""

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from acf.domain.signals import DeliveryStatusSignal
from acf.ports.clock import Clock

log = structlog.get_logger("acf.delivery_statuses")

RECHECK_PAUSES_MS = (100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000)
"""About 69 s in all: far longer than a relay takes from the provider's answer to its
commit, even on a busy machine."""
MAX_PENDING = 10_000
"""Rechecks waiting at once in one process; beyond them an unknown status is dropped."""

Apply = Callable[[DeliveryStatusSignal], Awaitable[bool]]
"""Applies a status to the reply it names: False when no reply has that id (yet)."""


class StatusRechecks:
    """The statuses of one process waiting for their reply's record."""

    def __init__(
        self,
        clock: Clock,
        pauses_ms: tuple[int, ...] = RECHECK_PAUSES_MS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._clock = clock
        self._pauses_ms = pauses_ms
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, signal: DeliveryStatusSignal, apply: Apply) -> bool:
        """Look ``signal`` up again later; False when too many are waiting already."""
        if len(self._tasks) >= self._max_pending:
            log.warning("delivery.status_dropped", tenant=signal.tenant, reason="too many")
            return False
        task = asyncio.get_running_loop().create_task(self._again(signal, apply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _again(self, signal: DeliveryStatusSignal, apply: Apply) -> None:
        try:
            for pause_ms in self._pauses_ms:
                await self._clock.sleep(pause_ms / 1000)
                if await apply(signal):
                    return
        except Exception as exc:  # the store closing under it, say: the status is dropped
            log.warning("delivery.status_recheck_failed", tenant=signal.tenant, error=repr(exc))
            return
        log.info(
            "delivery.status_unknown",
            tenant=signal.tenant,
            provider_message_id=signal.provider_message_id,
        )

    async def close(self) -> None:
        """Stop waiting (the process stops)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
