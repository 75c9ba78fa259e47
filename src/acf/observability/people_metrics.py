"""The metrics of people in the loop (issue 22): handoffs by source, operators' replies, the
firewall's findings by detector, its cool-downs, blocked customers' messages dropped and
webhook messages taken over the tenant's rate; SLA breaches and the handoffs waiting.

The first six are fed by ``FabricMetrics.observe`` from committed events (those of
``KINDS``, and ``turn.committed`` of ``human`` turns for the replies), so a counter never
counts a unit that rolled back; an event an adapter writes inside an op reaches them only
where the unit of work hands such events to its listeners. The mode watch
(``acf.service.mode_watch``) sets the last two itself: a breach's event is written by the
adapter inside its op, so the watch counts it in the process whose mark committed, and it
sets the waiting gauge at every check.
Labels from event data are held to their known values (``other`` for anything else). The
families share ``FabricMetrics``'s registry (``FabricMetrics.people``), so they are on the
same ``/metrics``.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from acf.domain.abuse import Detector
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.modes import TurnKind
from acf.observability.metric_families import OTHER

__all__ = ["KINDS", "PeopleMetrics"]

HUMAN_TURN = TurnKind.HUMAN.value
SOURCES = frozenset({"pipeline", "operator", "rule"})
DETECTORS = frozenset(d.value for d in Detector)
CHANNELS = frozenset(c.value for c in Channel)


def _known(value: object, known: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in known else OTHER


class PeopleMetrics:
    """Bookkeeping only, no I/O: ``observe`` takes one committed event of ``KINDS``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, ("tenant", *labels), registry=registry)

        self.handoffs = counter(
            "acf_handoffs",
            "Sessions handed to a person, by source (pipeline, operator, rule).",
            "source",
        )
        self.operator_replies = counter(
            "acf_operator_replies", "Replies operators sent (HUMAN turns committed)."
        )
        self.sla_breaches = counter(
            "acf_handoff_sla_breaches",
            "Handed-off sessions that waited unclaimed past the tenant's SLA.",
        )
        self.waiting = Gauge(
            "acf_handoffs_waiting",
            "Handed-off sessions nobody holds a claim on, as of this process's last check.",
            ("tenant",),
            registry=registry,
        )
        self.abuse_suspected = counter(
            "acf_abuse_suspected",
            "Firewall findings, by detector (flood, repeated, banned_terms, "
            "injection_storm, policy_blocks).",
            "detector",
        )
        self.cooldowns = counter(
            "acf_abuse_cooldowns", "Cool-downs started (a session moved from agent mode)."
        )
        self.dropped = counter(
            "acf_messages_dropped",
            "Messages of blocked customers consumed without an answer (audited).",
        )
        self.rate_exceeded = counter(
            "acf_rate_exceeded",
            "Webhook messages taken over the tenant's rate (stored and acknowledged, "
            "never refused), by channel.",
            "channel",
        )

    def observe(self, tenant: str, event: FabricEvent) -> None:
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, tenant, event)

    def turn_committed(self, tenant: str, e: FabricEvent) -> None:
        """A ``turn.committed``: a ``human`` one is an operator's reply (its unit commits the
        event itself, whereas ``operator.replied`` is written by the adapter)."""
        if e.data.get("kind") == HUMAN_TURN:
            self.operator_replies.labels(tenant).inc()

    def sla_breached(self, tenant: str) -> None:
        """A breach this process marked (the mode watch)."""
        self.sla_breaches.labels(tenant).inc()

    def handoffs_waiting(self, tenant: str, waiting: int) -> None:
        """The tenant's open handoffs without a live claim, at the mode watch's check."""
        self.waiting.labels(tenant).set(waiting)

    def _handed_off(self, tenant: str, e: FabricEvent) -> None:
        self.handoffs.labels(tenant, _known(e.data.get("source"), SOURCES)).inc()

    def _suspected(self, tenant: str, e: FabricEvent) -> None:
        self.abuse_suspected.labels(tenant, _known(e.data.get("detector"), DETECTORS)).inc()

    def _cooldown(self, tenant: str, e: FabricEvent) -> None:
        self.cooldowns.labels(tenant).inc()

    def _dropped(self, tenant: str, e: FabricEvent) -> None:
        first, last = e.data.get("from_seq"), e.data.get("to_seq")
        if isinstance(first, int) and isinstance(last, int) and last > first:
            self.dropped.labels(tenant).inc(last - first)

    def _rate_exceeded(self, tenant: str, e: FabricEvent) -> None:
        self.rate_exceeded.labels(tenant, _known(e.data.get("channel"), CHANNELS)).inc()


_HANDLERS: dict[EventKind, Callable[[PeopleMetrics, str, FabricEvent], None]] = {
    EventKind.SESSION_HANDED_OFF: PeopleMetrics._handed_off,
    EventKind.ABUSE_SUSPECTED: PeopleMetrics._suspected,
    EventKind.ABUSE_COOLDOWN_STARTED: PeopleMetrics._cooldown,
    EventKind.ABUSE_MESSAGES_DROPPED: PeopleMetrics._dropped,
    EventKind.RATE_EXCEEDED: PeopleMetrics._rate_exceeded,
}
KINDS = frozenset(_HANDLERS)
"""The event kinds that feed these metrics."""
