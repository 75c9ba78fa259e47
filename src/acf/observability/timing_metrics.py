"""The metrics of conversation timing (issue 23): replies held while the customer types.

``acf_typing_holds_total{tenant, ended}`` counts holds by how they ended (``stopped``,
``stale``, ``cap``, ``message``, ``mode``: ``domain.typing_hold.HoldEnd``), and
``acf_typing_hold_seconds{tenant}`` is the time they held a ready reply (from the turn's
first hold: a re-run that holds again counts on from there). Both are fed by
``FabricMetrics.observe`` from committed ``turn.hold_ended`` events, so a hold whose
runner lost its lease (no event) is not counted. The families share ``FabricMetrics``'s
registry (``FabricMetrics.timing``), so they are on the same ``/metrics``.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from acf.domain.events import EventKind, FabricEvent
from acf.domain.typing_hold import HoldEnd
from acf.observability.metric_families import OTHER

__all__ = ["HOLD_BUCKETS", "KINDS", "TimingMetrics"]

HOLD_ENDINGS = frozenset(e.value for e in HoldEnd)
HOLD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0)
"""A hold: the typing grace (a few seconds) up to the cap (``typing_hold_ms``)."""


class TimingMetrics:
    """Bookkeeping only, no I/O: ``observe`` takes one committed event of ``KINDS``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.holds = Counter(
            "acf_typing_holds",
            "Ready replies held while the customer typed, by how the hold ended (stopped, "
            "stale, cap, message, mode).",
            ("tenant", "ended"),
            registry=registry,
        )
        self.held = Histogram(
            "acf_typing_hold_seconds",
            "How long a ready reply was held while the customer typed.",
            ("tenant",),
            registry=registry,
            buckets=HOLD_BUCKETS,
        )

    def observe(self, tenant: str, event: FabricEvent) -> None:
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, tenant, event)

    def _hold_ended(self, tenant: str, e: FabricEvent) -> None:
        ended = e.data.get("ended")
        known = isinstance(ended, str) and ended in HOLD_ENDINGS
        self.holds.labels(tenant, ended if known else OTHER).inc()
        held = e.data.get("held_ms")
        if isinstance(held, int | float) and not isinstance(held, bool) and held >= 0:
            self.held.labels(tenant).observe(held / 1000)


_HANDLERS: dict[EventKind, Callable[[TimingMetrics, str, FabricEvent], None]] = {
    EventKind.TURN_HOLD_ENDED: TimingMetrics._hold_ended,
}
KINDS = frozenset(_HANDLERS)
"""The event kinds that feed these metrics."""
