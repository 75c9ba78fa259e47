"""Prometheus metrics derived from the FabricEvents the runtime commits (DESIGN §12).

Every committed event passes through ``FabricMetrics.observe`` after its transaction
succeeded, so a counter never counts what was rolled back. Durations come from the events
themselves (``waited_ms`` on ``window.closed``; ``run_ms`` and ``latency_ms`` on the turn's
terminal event; ``duration_ms`` on a tool's outcome); the only state kept here is when each
reply was queued, bounded, for the delivery latency when the delivery event does not say.

Every metric carries the label ``tenant``. Labels that come from event data are held to a
known set (anything else is counted as ``other``), so a stray value cannot blow up the
number of series.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from acf.domain.events import EventKind, FabricEvent

OTHER = "other"
"""The label value for anything outside a label's known values."""

WINDOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0)
"""Accumulation windows: the channel defaults are 0.25-5 s, typing holds them longer."""
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""A pipeline run (one LLM call to several with tools and retries) and a turn end to end."""
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Queued reply to the provider's acceptance: milliseconds, or minutes with retries."""
TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""A tool call, up to its timeout (the default is 30 s)."""

TURN_OUTCOMES = ("committed", "failed", "superseded")
ENDED_OUTCOMES = ("committed", "failed")
DELIVERY_STATUSES = ("delivered", "failed")
TOOL_OUTCOMES = ("completed", "failed", "in_doubt", "refused", "compensated")
RESOLUTIONS = ("yes", "no", "expired")
MESSAGE_RESULTS = ("accepted", "duplicate")
SUPERSEDE_REASONS = frozenset({"new_messages", "irreversible_gate"})
FORCE_REASONS = frozenset({"pipeline", "restart_bound"})
CLOSE_REASONS = frozenset(
    {
        "off",
        "fixed",
        "button",
        "confirmation_answer",
        "complete",
        "incomplete",
        "default",
        "typing",
        "typing_stopped",
        "cap",
    }
)
FAILURE_REASONS = (
    "deadline",
    "cancelled",
    "commit_refused",
    "pending_input",
    "in_doubt",
    "crashed",
    "exception",
)
_FAILURE_PREFIXES = (
    ("deadline ", "deadline"),
    ("the pipeline was cancelled", "cancelled"),
    ("commit refused", "commit_refused"),
    ("PendingInput", "pending_input"),
    ("irreversible action in doubt", "in_doubt"),
    ("the process stopped", "crashed"),
)
MAX_TOOL_LABELS = 200
"""Distinct tool names kept as label values; later ones are counted as ``other`` (a
refused call names whatever tool the pipeline asked for)."""
MAX_PENDING_REPLIES = 10_000
"""Queued replies whose queue time is kept until they are delivered."""


def failure_reason(error: object) -> str:
    """The kind of an attempt's or a turn's failure, from the runner's error text."""
    if isinstance(error, str):
        for prefix, reason in _FAILURE_PREFIXES:
            if error.startswith(prefix):
                return reason
    return "exception"


def _known(value: object, known: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in known else OTHER


def _seconds(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return value / 1000
    return None


class _Family:
    """The metric families, registered once per ``FabricMetrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, ("tenant", *labels), registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(name, doc, ("tenant", *labels), registry=registry, buckets=buckets)

        self.turns = counter(
            "acf_turns", "Turns ended, by outcome (committed, failed, superseded).", "outcome"
        )
        self.attempts = counter(
            "acf_turn_attempts", "Pipeline attempts started (first runs, retries, recoveries)."
        )
        self.attempt_failures = counter(
            "acf_turn_attempt_failures", "Pipeline attempts that failed, by reason.", "reason"
        )
        self.turn_failures = counter(
            "acf_turn_failures",
            "Turns that gave up (fallback reply, session flagged), by reason.",
            "reason",
        )
        self.supersedes = counter(
            "acf_supersedes", "Running turns superseded by newer messages, by reason.", "reason"
        )
        self.absorbs = counter("acf_absorbs", "Newer messages absorbed into a running turn.")
        self.force_completes = counter(
            "acf_force_completes",
            "Turns that went past the irreversible gate despite unseen messages, by reason.",
            "reason",
        )
        self.lease_lost = counter(
            "acf_lease_lost", "Session leases lost to another holder (lease contention)."
        )
        self.flagged = counter("acf_sessions_flagged", "Sessions flagged for a person.")
        self.windows = counter(
            "acf_windows_closed",
            "Accumulation windows closed, by the reason they closed.",
            "reason",
        )
        self.window_wait = histogram(
            "acf_window_wait_seconds",
            "Accumulation window wait: window opened to closed.",
            WINDOW_BUCKETS,
        )
        self.run = histogram(
            "acf_turn_run_seconds",
            "Turn run time: the run started to the turn's end, by outcome.",
            RUN_BUCKETS,
            "outcome",
        )
        self.latency = histogram(
            "acf_turn_latency_seconds",
            "Turn latency end to end: the first window of the turn group opened to the "
            "commit of the reply (committed) or of the fallback (failed).",
            RUN_BUCKETS,
            "outcome",
        )
        self.queued = counter("acf_responses_queued", "Reply segments queued in the outbox.")
        self.deliveries = counter(
            "acf_deliveries", "Outbox rows sent to the channel, by status.", "status"
        )
        self.delivery_retries = counter(
            "acf_delivery_retries", "Extra send attempts before a row was delivered or failed."
        )
        self.delivery_latency = histogram(
            "acf_delivery_latency_seconds",
            "Delivery latency: reply queued to accepted by the provider.",
            DELIVERY_BUCKETS,
        )
        self.tools = counter(
            "acf_tool_executions", "Tool executions, by tool and outcome.", "tool", "outcome"
        )
        self.tool_duration = histogram(
            "acf_tool_duration_seconds",
            "Tool execution time: the ledger's started row to its outcome.",
            TOOL_BUCKETS,
            "tool",
        )
        self.confirmations_requested = counter(
            "acf_confirmations_requested", "Confirmations asked of the customer."
        )
        self.confirmations_resolved = counter(
            "acf_confirmations_resolved",
            "Confirmations settled, by resolution (yes, no, expired).",
            "resolution",
        )
        self.messages = counter(
            "acf_messages", "Inbound messages acknowledged, by result.", "result"
        )
        self.rate_limited = counter(
            "acf_rate_limited", "Requests refused with 429 by the tenant's rate limit."
        )


class _Tenant:
    """One tenant's label children, bound once: an event costs a dict lookup or two."""

    __slots__ = (
        "absorbs",
        "attempt_failures",
        "attempts",
        "confirmations_requested",
        "delivered",
        "delivery_failed",
        "delivery_latency",
        "delivery_retries",
        "f",
        "flagged",
        "force_completes",
        "latency",
        "lease_lost",
        "messages",
        "name",
        "queued",
        "rate_limited",
        "resolutions",
        "run",
        "supersedes",
        "tool_duration",
        "tools",
        "turn_failures",
        "turns",
        "window_wait",
        "windows",
    )

    def __init__(self, f: _Family, tenant: str) -> None:
        self.f = f
        self.name = tenant
        self.turns = {o: f.turns.labels(tenant, o) for o in TURN_OUTCOMES}
        self.run = {o: f.run.labels(tenant, o) for o in TURN_OUTCOMES}
        self.latency = {o: f.latency.labels(tenant, o) for o in ENDED_OUTCOMES}
        self.attempts = f.attempts.labels(tenant)
        self.attempt_failures = {r: f.attempt_failures.labels(tenant, r) for r in FAILURE_REASONS}
        self.turn_failures = {r: f.turn_failures.labels(tenant, r) for r in FAILURE_REASONS}
        self.supersedes = {r: f.supersedes.labels(tenant, r) for r in (*SUPERSEDE_REASONS, OTHER)}
        self.absorbs = f.absorbs.labels(tenant)
        self.force_completes = {
            r: f.force_completes.labels(tenant, r) for r in (*FORCE_REASONS, OTHER)
        }
        self.lease_lost = f.lease_lost.labels(tenant)
        self.flagged = f.flagged.labels(tenant)
        self.windows: dict[str, Counter] = {}  # created as reasons occur (ten of them)
        self.window_wait = f.window_wait.labels(tenant)
        self.queued = f.queued.labels(tenant)
        self.delivered = f.deliveries.labels(tenant, "delivered")
        self.delivery_failed = f.deliveries.labels(tenant, "failed")
        self.delivery_retries = f.delivery_retries.labels(tenant)
        self.delivery_latency = f.delivery_latency.labels(tenant)
        self.tools: dict[str, dict[str, Counter]] = {}
        self.tool_duration: dict[str, Histogram] = {}
        self.confirmations_requested = f.confirmations_requested.labels(tenant)
        self.resolutions = {r: f.confirmations_resolved.labels(tenant, r) for r in RESOLUTIONS}
        self.messages = {r: f.messages.labels(tenant, r) for r in MESSAGE_RESULTS}
        self.rate_limited = f.rate_limited.labels(tenant)

    def window(self, reason: str) -> Counter:
        child = self.windows.get(reason)
        if child is None:
            child = self.windows[reason] = self.f.windows.labels(self.name, reason)
        return child

    def tool(self, tool: str) -> dict[str, Counter]:
        children = self.tools.get(tool)
        if children is None:
            children = self.tools[tool] = {
                o: self.f.tools.labels(self.name, tool, o) for o in TOOL_OUTCOMES
            }
        return children

    def tool_time(self, tool: str) -> Histogram:
        child = self.tool_duration.get(tool)
        if child is None:
            child = self.tool_duration[tool] = self.f.tool_duration.labels(self.name, tool)
        return child


_Handler = Callable[["FabricMetrics", _Tenant, FabricEvent], None]

_TOOL_OUTCOME_OF = {
    EventKind.TOOL_EXECUTION_COMPLETED: "completed",
    EventKind.TOOL_EXECUTION_FAILED: "failed",
    EventKind.TOOL_IN_DOUBT: "in_doubt",
    EventKind.TOOL_REFUSED: "refused",
    EventKind.TOOL_COMPENSATED: "compensated",
}


class FabricMetrics:
    """Per-tenant Prometheus metrics of one process, fed with committed FabricEvents.

    It has its own registry unless one is given (never the global one, so several apps
    and tests in one process do not collide). ``observe`` is bookkeeping only: no I/O.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._family = _Family(self.registry)
        self._tenants: dict[str, _Tenant] = {}
        self._tool_names: set[str] = set()
        self._queued_at: dict[tuple[str, int], int] = {}
        """(turn_id, position) -> when the reply was queued, until it is delivered."""

    # -- the HTTP layer calls these ------------------------------------------------

    def message_accepted(self, tenant: str, duplicate: bool) -> None:
        """An inbound message was acknowledged (a re-delivery: ``duplicate``)."""
        self._tenant(tenant).messages["duplicate" if duplicate else "accepted"].inc()

    def rate_limited(self, tenant: str) -> None:
        """A request was refused with 429 by the tenant's rate limit."""
        self._tenant(tenant).rate_limited.inc()

    # -- events ----------------------------------------------------------------------

    def observe(self, events: Iterable[FabricEvent]) -> None:
        """Count committed events. Kinds without a metric are skipped at the cost of one
        lookup; ``message.*`` events are left to ``message_accepted``."""
        handlers = _HANDLERS
        tenants = self._tenants
        for event in events:
            handler = handlers.get(event.kind)
            if handler is None:
                continue
            tenant = event.correlation.tenant
            series = tenants.get(tenant)
            if series is None:
                series = self._tenant(tenant)
            handler(self, series, event)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _tenant(self, tenant: str) -> _Tenant:
        series = self._tenants.get(tenant)
        if series is None:
            series = self._tenants[tenant] = _Tenant(self._family, tenant)
        return series

    def _tool_label(self, tool: object) -> str:
        if not isinstance(tool, str):
            return OTHER
        if tool in self._tool_names:
            return tool
        if len(self._tool_names) >= MAX_TOOL_LABELS:
            return OTHER
        self._tool_names.add(tool)
        return tool

    # -- handlers (one per kind) -----------------------------------------------------

    def _window_closed(self, t: _Tenant, e: FabricEvent) -> None:
        t.window(_known(e.data.get("reason"), CLOSE_REASONS)).inc()
        waited = _seconds(e.data, "waited_ms")
        if waited is not None:
            t.window_wait.observe(waited)

    def _turn_started(self, t: _Tenant, e: FabricEvent) -> None:
        t.attempts.inc()

    def _turn_ended(self, t: _Tenant, e: FabricEvent, outcome: str) -> None:
        t.turns[outcome].inc()
        run = _seconds(e.data, "run_ms")
        if run is not None:
            t.run[outcome].observe(run)
        latency = _seconds(e.data, "latency_ms")
        if latency is not None and outcome in t.latency:
            t.latency[outcome].observe(latency)

    def _committed(self, t: _Tenant, e: FabricEvent) -> None:
        self._turn_ended(t, e, "committed")

    def _failed(self, t: _Tenant, e: FabricEvent) -> None:
        self._turn_ended(t, e, "failed")
        t.turn_failures[failure_reason(e.data.get("error"))].inc()

    def _superseded(self, t: _Tenant, e: FabricEvent) -> None:
        self._turn_ended(t, e, "superseded")
        t.supersedes[_known(e.data.get("reason"), SUPERSEDE_REASONS)].inc()

    def _attempt_failed(self, t: _Tenant, e: FabricEvent) -> None:
        t.attempt_failures[failure_reason(e.data.get("error"))].inc()

    def _absorbed(self, t: _Tenant, e: FabricEvent) -> None:
        t.absorbs.inc()

    def _force_completed(self, t: _Tenant, e: FabricEvent) -> None:
        t.force_completes[_known(e.data.get("reason"), FORCE_REASONS)].inc()

    def _lease_lost(self, t: _Tenant, e: FabricEvent) -> None:
        t.lease_lost.inc()

    def _flagged(self, t: _Tenant, e: FabricEvent) -> None:
        t.flagged.inc()

    def _queued(self, t: _Tenant, e: FabricEvent) -> None:
        t.queued.inc()
        turn_id = e.correlation.turn_id
        position = e.data.get("position")
        if turn_id is None or not isinstance(position, int):
            return
        pending = self._queued_at
        if len(pending) >= MAX_PENDING_REPLIES:
            del pending[next(iter(pending))]  # the oldest: it was never delivered here
        pending[(turn_id, position)] = e.at_ms

    def _queued_since(self, e: FabricEvent) -> int | None:
        """When the delivered row was queued: from the event, else as seen here."""
        data = e.data
        queued = data.get("queued_at_ms")
        turn_id = data.get("turn_id", e.correlation.turn_id)
        position = data.get("position")
        if isinstance(turn_id, str) and isinstance(position, int):
            remembered = self._queued_at.pop((turn_id, position), None)
            if not isinstance(queued, int):
                queued = remembered
        return queued if isinstance(queued, int) else None

    def _sent(self, t: _Tenant, e: FabricEvent, delivered: bool) -> None:
        (t.delivered if delivered else t.delivery_failed).inc()
        attempt = e.data.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            t.delivery_retries.inc(attempt - 1)
        queued = self._queued_since(e)
        if delivered and queued is not None and e.at_ms >= queued:
            t.delivery_latency.observe((e.at_ms - queued) / 1000)

    def _delivered(self, t: _Tenant, e: FabricEvent) -> None:
        self._sent(t, e, delivered=True)

    def _delivery_failed(self, t: _Tenant, e: FabricEvent) -> None:
        self._sent(t, e, delivered=False)

    def _tool(self, t: _Tenant, e: FabricEvent) -> None:
        tool = self._tool_label(e.data.get("tool"))
        t.tool(tool)[_TOOL_OUTCOME_OF[e.kind]].inc()
        took = _seconds(e.data, "duration_ms")
        if took is not None:
            t.tool_time(tool).observe(took)

    def _confirmation_requested(self, t: _Tenant, e: FabricEvent) -> None:
        t.confirmations_requested.inc()

    def _confirmation_settled(self, t: _Tenant, e: FabricEvent) -> None:
        answer = "expired" if e.kind is EventKind.CONFIRMATION_EXPIRED else e.data.get("answer")
        child = t.resolutions.get(answer) if isinstance(answer, str) else None
        if child is not None:
            child.inc()


_HANDLERS: dict[EventKind, _Handler] = {
    EventKind.WINDOW_CLOSED: FabricMetrics._window_closed,
    EventKind.TURN_STARTED: FabricMetrics._turn_started,
    EventKind.TURN_COMMITTED: FabricMetrics._committed,
    EventKind.TURN_FAILED: FabricMetrics._failed,
    EventKind.TURN_SUPERSEDED: FabricMetrics._superseded,
    EventKind.TURN_ATTEMPT_FAILED: FabricMetrics._attempt_failed,
    EventKind.TURN_ABSORBED: FabricMetrics._absorbed,
    EventKind.TURN_FORCE_COMPLETED: FabricMetrics._force_completed,
    EventKind.LEASE_LOST: FabricMetrics._lease_lost,
    EventKind.SESSION_FLAGGED: FabricMetrics._flagged,
    EventKind.RESPONSE_QUEUED: FabricMetrics._queued,
    EventKind.RESPONSE_DELIVERED: FabricMetrics._delivered,
    EventKind.RESPONSE_FAILED: FabricMetrics._delivery_failed,
    **{kind: FabricMetrics._tool for kind in _TOOL_OUTCOME_OF},
    EventKind.CONFIRMATION_REQUESTED: FabricMetrics._confirmation_requested,
    EventKind.CONFIRMATION_RESOLVED: FabricMetrics._confirmation_settled,
    EventKind.CONFIRMATION_EXPIRED: FabricMetrics._confirmation_settled,
}
