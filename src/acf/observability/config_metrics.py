"""The configuration canary's metrics (DESIGN §17): how many canaries were rolled back
automatically, by the measure that breached, and each tenant's canary share.

Fed by the canary watch (``acf.service.canary``), not by the unit of work's event
listeners: the version store's lifecycle ops append their audit events inside the adapter
(as a message's arrival is recorded), so those events never pass through the listeners.
The watch sets the share from the store's pointer at every check, in every process that
runs it, so the gauge follows a change made elsewhere (an API promote, another worker's
step) within one check; the rollback counter counts in the process whose rollback
committed (a worker whose rollback lost the race to another counts nothing).

The families share ``FabricMetrics``'s registry, so they are on the same ``/metrics``.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge

from acf.domain.canary import MEASURES
from acf.observability.metric_families import OTHER

__all__ = ["ConfigMetrics"]


class ConfigMetrics:
    """Bookkeeping only, no I/O."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rollbacks = Counter(
            "acf_config_canary_rollbacks",
            "Canaries rolled back automatically, by the measure that breached its margin "
            "(failure, fallback, handoff, latency).",
            ("tenant", "reason"),
            registry=registry,
        )
        self.share = Gauge(
            "acf_config_canary_share",
            "The percent of the tenant's new sessions given its canary version (0: no "
            "canary), as of this process's last check.",
            ("tenant",),
            registry=registry,
        )

    def canary_rolled_back(self, tenant: str, measure: str) -> None:
        """A rollback committed by this process; ``measure`` outside the known set is
        counted as ``other``."""
        self.rollbacks.labels(tenant, measure if measure in MEASURES else OTHER).inc()
        self.share.labels(tenant).set(0)

    def canary_share(self, tenant: str, share: int) -> None:
        self.share.labels(tenant).set(share)
