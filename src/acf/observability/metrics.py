"""Prometheus metrics derived from the FabricEvents the runtime commits (DESIGN §12).

Every committed event passes through ``FabricMetrics.observe`` after its transaction
succeeded, so a counter never counts what was rolled back. Durations come from the events
themselves (``waited_ms`` on ``window.closed``; ``run_ms`` and ``latency_ms`` on the turn's
terminal event; ``duration_ms`` on a tool's outcome); the only state kept here is when each
reply was queued, bounded, for the delivery latency when the delivery event does not say.
A reply held while the customer typed is in ``acf_turn_latency_seconds`` (what the customer
saw: ``latency_ms`` keeps the hold) and not in ``acf_turn_run_seconds`` (``run_ms`` leaves
it out: waiting on purpose is no run time); the holds themselves are ``timing_metrics``'.

Pipelines' metrics come from their progress events (``turn.progress`` by name): the LLM
pipeline's (``llm.*``, ``enforcement.hit``) in ``llm_metrics``; the agent service's and the
router's (``agent_service.*``, ``routing.decision``, and ``dead_letter.recorded``) in
``agent_service_metrics``; people in the loop's (handoffs, operators' replies, the
firewall's findings, cool-downs, drops, webhook messages over the rate) in
``people_metrics``; conversation timing's (replies held while the customer types) in
``timing_metrics``; the health of
each agent service endpoint is set by the entry point (``set_agent_service_health``) from
the process's availability registry, which this layer does not import.

Every metric carries the label ``tenant``, except the requests' counters (``request``:
the HTTP layer counts them before it knows the tenant) and the agent service endpoints'
gauges (a breaker and a health check serve every tenant of the process). Labels that
come from event data are held to a known set (anything else is counted as ``other``), so
a stray value cannot blow up the number of series. The families and their label values:
``metric_families``.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from acf.domain.events import EventKind, FabricEvent
from acf.domain.modes import TurnKind
from acf.observability.agent_service_metrics import AgentServiceMetrics
from acf.observability.llm_metrics import LlmMetrics
from acf.observability.metric_families import (
    CLOSE_REASONS,
    FORCE_REASONS,
    OTHER,
    SUPERSEDE_REASONS,
    Families,
    TenantSeries,
    failure_reason,
)
from acf.observability.people_metrics import KINDS as PEOPLE_KINDS
from acf.observability.people_metrics import PeopleMetrics
from acf.observability.timing_metrics import KINDS as TIMING_KINDS
from acf.observability.timing_metrics import TimingMetrics
from acf.observability.trace_context import valid_trace_id

__all__ = [
    "MAX_LLM_LABELS",
    "MAX_PENDING_REPLIES",
    "MAX_TOOL_LABELS",
    "FabricMetrics",
    "failure_reason",
]

AGENT_TURN = TurnKind.AGENT.value
"""The kind of turn the turn families count (``turn.committed``'s ``kind``; none: agent)."""
MAX_TOOL_LABELS = 200
"""Distinct tool names kept as label values; later ones are counted as ``other`` (a
refused call names whatever tool the pipeline asked for)."""
MAX_LLM_LABELS = 100
"""Distinct values kept per label of the LLM and agent service metrics (agents, models,
config versions, endpoints, profiles, routes); later ones are counted as ``other``."""
MAX_PENDING_REPLIES = 10_000
"""Queued replies whose queue time is kept until they are delivered."""


def _known(value: object, known: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in known else OTHER


def _amount(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _seconds(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return value / 1000
    return None


_Handler = Callable[["FabricMetrics", TenantSeries, FabricEvent], None]

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
        self._family = Families(self.registry)
        self._tenants: dict[str, TenantSeries] = {}
        self._tool_names: set[str] = set()
        self._queued_at: dict[tuple[str, int], int] = {}
        """(turn_id, position) -> when the reply was queued, until it is delivered."""
        self._llm_values: dict[str, set[str]] = {}
        self._llm = LlmMetrics(self._family.llm, self._llm_label)
        self._agents = AgentServiceMetrics(self.registry, self._llm_label)
        self.people = PeopleMetrics(self.registry)
        """People in the loop: handoffs, operators' replies, the firewall (``people_metrics``)."""
        self.timing = TimingMetrics(self.registry)
        """Replies held while the customer types (``timing_metrics``)."""

    # -- the HTTP layer calls these ------------------------------------------------

    def message_accepted(self, tenant: str, duplicate: bool) -> None:
        """An inbound message was acknowledged (a re-delivery: ``duplicate``)."""
        self._tenant(tenant).messages["duplicate" if duplicate else "accepted"].inc()

    def rate_limited(self, tenant: str) -> None:
        """A request was refused with 429 by the tenant's rate limit."""
        self._tenant(tenant).rate_limited.inc()

    def request(self, route: str, traced: bool) -> None:
        """A request reached ``route`` (``api``, ``webhook_<provider>``), with a trace id
        from its caller or without one (seed 002 Q14: the propagation rate)."""
        self._family.requests.labels(route).inc()
        if not traced:
            self._family.requests_without_trace.labels(route).inc()

    def set_agent_service_health(self, endpoint: str, up: bool, circuit: str | None) -> None:
        """An agent service endpoint's health as the process's availability registry has
        it (``up``: usable; ``circuit``: closed, half_open or open), read by the entry point
        when ``/metrics`` or ``/readyz`` is asked."""
        self._agents.set_health(endpoint, up, circuit)

    # -- events ----------------------------------------------------------------------

    def observe(self, events: Iterable[FabricEvent]) -> None:
        """Count committed events. Kinds without a metric are skipped at the cost of one
        lookup; ``message.*`` events are left to ``message_accepted``."""
        handlers = _HANDLERS
        tenants = self._tenants
        for event in events:
            if not valid_trace_id(event.correlation.trace_id):
                self._family.events_without_trace.labels(
                    event.correlation.tenant, event.kind.value
                ).inc()
            if event.kind is EventKind.TURN_PROGRESS:  # by name: most feed no metric
                name = event.data.get("name")
                handler = _PROGRESS_HANDLERS.get(name) if isinstance(name, str) else None
            else:
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

    def _tenant(self, tenant: str) -> TenantSeries:
        series = self._tenants.get(tenant)
        if series is None:
            series = self._tenants[tenant] = TenantSeries(self._family, tenant)
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

    def _window_closed(self, t: TenantSeries, e: FabricEvent) -> None:
        t.window(_known(e.data.get("reason"), CLOSE_REASONS)).inc()
        waited = _seconds(e.data, "waited_ms")
        if waited is not None:
            t.window_wait.observe(waited)

    def _turn_started(self, t: TenantSeries, e: FabricEvent) -> None:
        t.attempts.inc()

    def _turn_ended(self, t: TenantSeries, e: FabricEvent, outcome: str) -> None:
        t.turns[outcome].inc()
        run = _seconds(e.data, "run_ms")
        if run is not None:
            t.run[outcome].observe(run)
        latency = _seconds(e.data, "latency_ms")
        if latency is not None and outcome in t.latency:
            t.latency[outcome].observe(latency)

    def _committed(self, t: TenantSeries, e: FabricEvent) -> None:
        # The turn families count the agent's turns: an operator's reply (kind ``human``)
        # and a blocked customer's dropped messages (``drop``) are counted by
        # ``people_metrics`` (``acf_operator_replies_total``, the drops' counter).
        if e.data.get("kind", AGENT_TURN) == AGENT_TURN:
            self._turn_ended(t, e, "committed")
        self.people.turn_committed(t.name, e)

    def _failed(self, t: TenantSeries, e: FabricEvent) -> None:
        self._turn_ended(t, e, "failed")
        t.turn_failures[failure_reason(e.data.get("error"))].inc()

    def _superseded(self, t: TenantSeries, e: FabricEvent) -> None:
        self._turn_ended(t, e, "superseded")
        t.supersedes[_known(e.data.get("reason"), SUPERSEDE_REASONS)].inc()

    def _attempt_failed(self, t: TenantSeries, e: FabricEvent) -> None:
        t.attempt_failures[failure_reason(e.data.get("error"))].inc()

    def _absorbed(self, t: TenantSeries, e: FabricEvent) -> None:
        t.absorbs.inc()

    def _force_completed(self, t: TenantSeries, e: FabricEvent) -> None:
        t.force_completes[_known(e.data.get("reason"), FORCE_REASONS)].inc()

    def _lease_lost(self, t: TenantSeries, e: FabricEvent) -> None:
        t.lease_lost.inc()

    def _flagged(self, t: TenantSeries, e: FabricEvent) -> None:
        t.flagged.inc()

    def _queued(self, t: TenantSeries, e: FabricEvent) -> None:
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

    def _sent(self, t: TenantSeries, e: FabricEvent, delivered: bool) -> None:
        (t.delivered if delivered else t.delivery_failed).inc()
        attempt = e.data.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            t.delivery_retries.inc(attempt - 1)
        queued = self._queued_since(e)
        if delivered and queued is not None and e.at_ms >= queued:
            t.delivery_latency.observe((e.at_ms - queued) / 1000)

    def _delivered(self, t: TenantSeries, e: FabricEvent) -> None:
        self._sent(t, e, delivered=True)

    def _delivery_failed(self, t: TenantSeries, e: FabricEvent) -> None:
        self._sent(t, e, delivered=False)

    def _cut(self, t: TenantSeries, e: FabricEvent) -> None:
        """Parts of a reply not sent (the customer wrote again): counted, never delivered."""
        positions = e.data.get("positions")
        if not isinstance(positions, list):
            return
        t.delivery_cut.inc(len(positions))
        turn_id = e.correlation.turn_id
        for position in positions:
            if isinstance(turn_id, str) and isinstance(position, int):
                self._queued_at.pop((turn_id, position), None)

    def _tool(self, t: TenantSeries, e: FabricEvent) -> None:
        tool = self._tool_label(e.data.get("tool"))
        t.tool(tool)[_TOOL_OUTCOME_OF[e.kind]].inc()
        took = _seconds(e.data, "duration_ms")
        if took is not None:
            t.tool_time(tool).observe(took)

    def _confirmation_requested(self, t: TenantSeries, e: FabricEvent) -> None:
        t.confirmations_requested.inc()

    def _confirmation_settled(self, t: TenantSeries, e: FabricEvent) -> None:
        answer = "expired" if e.kind is EventKind.CONFIRMATION_EXPIRED else e.data.get("answer")
        child = t.resolutions.get(answer) if isinstance(answer, str) else None
        if child is not None:
            child.inc()

    # -- the LLM pipeline's progress events (DESIGN §16) ---------------------------

    def _llm_label(self, kind: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            return OTHER
        seen = self._llm_values.setdefault(kind, set())
        if value in seen:
            return value
        if len(seen) >= MAX_LLM_LABELS:
            return OTHER
        seen.add(value)
        return value

    def _llm_completion(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.completion(e)

    def _llm_turn(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.turn(t.name, e)

    def _llm_cancelled(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.cancelled(e)

    def _llm_retry(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.retry(e)

    def _llm_fallback(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.fallback(e)

    def _llm_circuit(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.circuit(t.name, e)

    def _enforcement_hit(self, t: TenantSeries, e: FabricEvent) -> None:
        self._llm.enforcement_hit(t.name, e)

    # -- the agent service pipeline and the router (seed 004 Story 8) ---------------

    def _agent_execution(self, t: TenantSeries, e: FabricEvent) -> None:
        self._agents.execution(t.name, e.data, e.correlation.config_version)

    def _agent_circuit(self, t: TenantSeries, e: FabricEvent) -> None:
        self._agents.circuit_changed(e.data)

    def _routing_decision(self, t: TenantSeries, e: FabricEvent) -> None:
        self._agents.routing_decision(t.name, e.data, e.correlation.config_version)

    def _dead_letter(self, t: TenantSeries, e: FabricEvent) -> None:
        self._agents.dead_letter(t.name)

    def _people_event(self, t: TenantSeries, e: FabricEvent) -> None:
        self.people.observe(t.name, e)

    def _timing_event(self, t: TenantSeries, e: FabricEvent) -> None:
        self.timing.observe(t.name, e)


_PROGRESS_HANDLERS: dict[str, _Handler] = {
    "llm.completion": FabricMetrics._llm_completion,
    "llm.turn": FabricMetrics._llm_turn,
    "llm.generation_cancelled": FabricMetrics._llm_cancelled,
    "llm.retry": FabricMetrics._llm_retry,
    "llm.fallback_model": FabricMetrics._llm_fallback,
    "llm.circuit": FabricMetrics._llm_circuit,
    "enforcement.hit": FabricMetrics._enforcement_hit,
    "agent_service.execution": FabricMetrics._agent_execution,
    "agent_service.circuit": FabricMetrics._agent_circuit,
    "routing.decision": FabricMetrics._routing_decision,
}
"""The progress events (``turn.progress`` by ``name``) that feed a metric."""

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
    EventKind.REPLY_CUT: FabricMetrics._cut,
    **{kind: FabricMetrics._tool for kind in _TOOL_OUTCOME_OF},
    EventKind.CONFIRMATION_REQUESTED: FabricMetrics._confirmation_requested,
    EventKind.CONFIRMATION_RESOLVED: FabricMetrics._confirmation_settled,
    EventKind.CONFIRMATION_EXPIRED: FabricMetrics._confirmation_settled,
    EventKind.DEAD_LETTER_RECORDED: FabricMetrics._dead_letter,
    **dict.fromkeys(PEOPLE_KINDS, FabricMetrics._people_event),
    **dict.fromkeys(TIMING_KINDS, FabricMetrics._timing_event),
}
