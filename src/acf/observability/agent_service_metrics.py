"""The agent service's and the router's metrics (seed 004 Story 8), fed by their progress
events and by the entry point's view of each endpoint's health.

Per tenant and agent: executions by outcome, their duration, the time to the first answer
chunk, the time from the request to each event by type (p50/p95/p99 by event type), retries,
resumed streams and errors by kind; routing decisions by route and reason and how long each
took; dead letters. Per endpoint (the breaker and the health checks are process-wide, shared
by every tenant): whether it is up and its circuit's state.

Label values from event data are held to known sets (event types, outcomes, failure kinds,
routing reasons) or to a bounded number of distinct values (agents, profiles, routes,
endpoints: the ``label`` function ``FabricMetrics`` gives), anything else is ``other``.
"""

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from acf.observability.metric_families import CIRCUIT_STATES, OTHER, RUN_BUCKETS, TTFT_BUCKETS

__all__ = [
    "AGENT_EVENT_TYPES",
    "AGENT_FAILURE_KINDS",
    "EXECUTION_OUTCOMES",
    "ROUTING_REASONS",
    "AgentServiceMetrics",
]

EXECUTION_OUTCOMES = frozenset({"complete", "ask_user", "error", "failed", "superseded"})
ERROR_OUTCOMES = frozenset({"error", "failed"})
"""The outcomes counted as errors: an ERROR event, or a call that failed for good."""
AGENT_EVENT_TYPES = frozenset(
    {"THOUGHT", "TOOL_START", "TOOL_END", "ANSWER_CHUNK", "ASK_USER", "COMPLETE", "ERROR"}
)
AGENT_FAILURE_KINDS = frozenset(
    {
        "unavailable",
        "server_error",
        "service_timeout",
        "bad_request",
        "unauthorized",
        "first_event_timeout",
        "stream_timeout",
        "cut",
        "protocol",
        "agent_error",
    }
)
ROUTING_REASONS = frozenset(
    {
        "command",
        "keyword",
        "regex",
        "replay",
        "sticky",
        "classifier",
        "default",
        "disabled",
        "fallback",
    }
)
MAX_EVENT_OFFSETS = 50
"""Offsets read from one execution's event (the pipeline sends at most this many)."""
DECISION_BUCKETS = (
    0.00001,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
)
"""A routing decision: microseconds for a command or keyword, more with a session lookup;
the seed's budget for the routing overhead is 500 ms."""

Label = Callable[[str, object], str]
"""``label(kind, value)``: the value as a label of that kind, or ``other`` past the bound."""


def _known(value: object, known: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in known else OTHER


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _ms_as_seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return value / 1000
    return None


class AgentServiceMetrics:
    """The families and how each event feeds them. Bookkeeping only, no I/O."""

    def __init__(self, registry: CollectorRegistry, label: Label) -> None:
        self._label = label
        per_agent = ("tenant", "agent", "config_version")

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, (*per_agent, *labels), registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            labels = (*per_agent, *labels)
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        self.requests = counter(
            "acf_agent_service_requests",
            "Agent service executions ended, by profile and outcome (complete, ask_user, "
            "error, failed, superseded).",
            "profile",
            "outcome",
        )
        self.duration = histogram(
            "acf_agent_service_request_seconds",
            "Agent service execution time: the first request to the final event, retries "
            "and resumed streams included.",
            RUN_BUCKETS,
            "profile",
        )
        self.first_chunk = histogram(
            "acf_agent_service_first_chunk_seconds",
            "Time from the first request to the first answer chunk.",
            TTFT_BUCKETS,
            "profile",
        )
        self.event_time = histogram(
            "acf_agent_service_event_seconds",
            "Time from the first request to each event the service sent, by event type.",
            RUN_BUCKETS,
            "type",
        )
        self.retries = counter(
            "acf_agent_service_retries", "Agent service requests sent again after a failure."
        )
        self.resumes = counter(
            "acf_agent_service_resumes",
            "Cut agent service streams resumed with Last-Event-ID.",
        )
        self.errors = counter(
            "acf_agent_service_errors",
            "Agent service executions that ended in an error (an ERROR event or a call that "
            "failed for good), by kind.",
            "kind",
        )
        self.routing = counter(
            "acf_routing_decisions",
            "Routing decisions of router pipelines, by route and reason.",
            "route",
            "reason",
        )
        self.routing_time = histogram(
            "acf_routing_decision_seconds",
            "Time a router took to choose a route.",
            DECISION_BUCKETS,
        )
        self.dead_letters = Counter(
            "acf_dead_letters",
            "Turns recorded as dead letters (their call failed for good).",
            ("tenant",),
            registry=registry,
        )
        self.circuit = Gauge(
            "acf_agent_service_circuit_state",
            "The agent service endpoint's circuit breaker (process-wide): 0 closed, "
            "1 half-open (a probe), 2 open.",
            ("endpoint",),
            registry=registry,
        )
        self.up = Gauge(
            "acf_agent_service_up",
            "Whether the agent service endpoint is usable: its circuit is not open and its "
            "last health check did not fail (1), or not (0).",
            ("endpoint",),
            registry=registry,
        )

    def execution(self, tenant: str, data: Mapping[str, Any], version: str | None = None) -> None:
        """An ``agent_service.execution`` event: one execution ended (``version``: the
        configuration version of its turn)."""
        agent = self._label("agent", data.get("agent"))
        v = self._label("config_version", version)
        profile = self._label("profile", data.get("profile"))
        outcome = _known(data.get("outcome"), EXECUTION_OUTCOMES)
        self.requests.labels(tenant, agent, v, profile, outcome).inc()
        duration = _ms_as_seconds(data.get("duration_ms"))
        if duration is not None:
            self.duration.labels(tenant, agent, v, profile).observe(duration)
        first_chunk = _ms_as_seconds(data.get("first_chunk_ms"))
        if first_chunk is not None:
            self.first_chunk.labels(tenant, agent, v, profile).observe(first_chunk)
        self._offsets(tenant, agent, v, data.get("event_offsets_ms"))
        retries = _count(data, "attempts") - 1
        if retries > 0:
            self.retries.labels(tenant, agent, v).inc(retries)
        resumes = _count(data, "resumes")
        if resumes:
            self.resumes.labels(tenant, agent, v).inc(resumes)
        if outcome in ERROR_OUTCOMES:
            kind = _known(data.get("error_kind"), AGENT_FAILURE_KINDS)
            self.errors.labels(tenant, agent, v, kind).inc()

    def _offsets(self, tenant: str, agent: str, version: str, offsets: object) -> None:
        if not isinstance(offsets, list):
            return
        children: dict[str, Histogram] = {}
        for pair in offsets[:MAX_EVENT_OFFSETS]:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                continue
            seconds = _ms_as_seconds(pair[1])
            if seconds is None:
                continue
            kind = _known(pair[0], AGENT_EVENT_TYPES)
            child = children.get(kind)
            if child is None:
                child = children[kind] = self.event_time.labels(tenant, agent, version, kind)
            child.observe(seconds)

    def circuit_changed(self, data: Mapping[str, Any]) -> None:
        """An ``agent_service.circuit`` event: the endpoint's breaker changed state."""
        state = data.get("state")
        if isinstance(state, str):
            self.set_circuit(self._label("agent_endpoint", data.get("endpoint")), state)

    def routing_decision(
        self, tenant: str, data: Mapping[str, Any], version: str | None = None
    ) -> None:
        """A ``routing.decision`` event (``version``: its turn's configuration version)."""
        agent = self._label("agent", data.get("agent"))
        v = self._label("config_version", version)
        route = self._label("route", data.get("route"))
        reason = _known(data.get("reason"), ROUTING_REASONS)
        self.routing.labels(tenant, agent, v, route, reason).inc()
        took = data.get("decision_us")
        if isinstance(took, int | float) and not isinstance(took, bool) and took >= 0:
            self.routing_time.labels(tenant, agent, v).observe(took / 1_000_000)

    def dead_letter(self, tenant: str) -> None:
        """A ``dead_letter.recorded`` event."""
        self.dead_letters.labels(tenant).inc()

    def set_circuit(self, endpoint: str, state: str) -> None:
        level = CIRCUIT_STATES.get(state)
        if level is not None:
            self.circuit.labels(endpoint).set(level)

    def set_health(self, endpoint: str, up: bool, circuit: str | None) -> None:
        """What the entry point read from the process's availability registry."""
        label = self._label("agent_endpoint", endpoint)
        self.up.labels(label).set(1.0 if up else 0.0)
        if circuit is not None:
            self.set_circuit(label, circuit)
