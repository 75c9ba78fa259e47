"""Keeping a process's fair slots sized to what it can keep up with (issue 17).

``AdmissionControl.run`` measures the event loop's lateness — how much later than asked a
short sleep wakes up, in real time, since it is the loop's own state whatever clock the
runtime uses — and resizes the ``FairSlots`` by :func:`acf.domain.admission.next_limit`.
Sessions beyond the limit wait for a slot before they take their lease: a waiting session
holds no lease and reads nothing, so it costs a parked task, and the sessions admitted keep
their leases renewed in time.
"""

import asyncio

import structlog

from acf.domain.admission import AdmissionBounds, next_limit
from acf.service.fair_slots import FairSlots

log = structlog.get_logger("acf.runtime")

PROBE_S = 0.25
"""How often the loop's lateness is measured (and the limit reconsidered)."""


class AdmissionControl:
    def __init__(self, slots: FairSlots, bounds: AdmissionBounds) -> None:
        self._slots = slots
        self._bounds = bounds
        self.lag_ms = 0.0
        """The latest measurement."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(PROBE_S)
            self.lag_ms = max(0.0, (loop.time() - asked - PROBE_S) * 1000)
            self.apply(self.lag_ms)

    def apply(self, lag_ms: float) -> int:
        """Resize the slots after one measurement; returns the new total."""
        slots = self._slots
        limit = next_limit(slots.total, lag_ms, slots.waiting_total(), self._bounds)
        if limit != slots.total:
            log.info(
                "admission.resized",
                slots=limit,
                was=slots.total,
                lag_ms=round(lag_ms, 1),
                running=slots.in_use_total(),
                waiting=slots.waiting_total(),
            )
            slots.resize(limit)
        return limit
