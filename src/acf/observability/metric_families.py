"""The Prometheus metric families of ``FabricMetrics`` and the label values they allow.

``Families`` registers every family once per registry; ``TenantSeries`` binds one tenant's
label children once, so counting an event costs a dict lookup or two. Which event feeds
which series is ``acf.observability.metrics``. Every family carries the label ``tenant``
(but the requests', counted before a tenant is known); the other labels take values from
the known sets below (anything else is ``OTHER``).
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""A model's time to first token: a few hundred milliseconds to seconds."""
TOOL_ROUND_BUCKETS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0)
"""Tool rounds of one LLM turn (at most ``max_tool_rounds``, 6 by default)."""

TURN_OUTCOMES = ("committed", "failed", "superseded")
ENDED_OUTCOMES = ("committed", "failed")
DELIVERY_STATUSES = ("delivered", "failed")
TOOL_OUTCOMES = ("completed", "failed", "in_doubt", "refused", "compensated")
RESOLUTIONS = ("yes", "no", "expired")
MESSAGE_RESULTS = ("accepted", "duplicate")
SUPERSEDE_REASONS = frozenset({"new_messages", "irreversible_gate", "mode"})
"""``mode``: the session left agent mode under the turn (handoff, cool-down, block)."""
FORCE_REASONS = frozenset({"pipeline", "restart_bound"})
CLOSE_REASONS = frozenset(
    {
        "off",
        "fixed",
        "button",
        "confirmation_answer",
        "awaited_answer",
        "acknowledgement",
        "complete",
        "incomplete",
        "default",
        "typing",
        "typing_stopped",
        "pace",
        "cap",
    }
)
TOKEN_KINDS = ("prompt", "completion")
CIRCUIT_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
"""The circuit gauge's value per breaker state."""
ENFORCEMENT_RULES = frozenset(
    {"claimed_action", "banned_phrase", "max_length", "required_disclosure"}
)
ENFORCEMENT_ACTIONS = frozenset({"regenerate", "fallback", "cut", "append", "default_question"})
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


def failure_reason(error: object) -> str:
    """The kind of an attempt's or a turn's failure, from the runner's error text."""
    if isinstance(error, str):
        for prefix, reason in _FAILURE_PREFIXES:
            if error.startswith(prefix):
                return reason
    return "exception"


class Families:
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
            "acf_supersedes",
            "Running turns superseded, by reason (new_messages, irreversible_gate, mode: the "
            "session left agent mode).",
            "reason",
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
            "Turn run time: the run started to the turn's end, less any typing hold, by outcome.",
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
        self.events_without_trace = counter(
            "acf_events_without_trace",
            "Events stored without a valid W3C trace id, by kind (should stay 0).",
            "kind",
        )
        self.llm = LlmFamilies(registry)
        self.requests = Counter(
            "acf_requests",
            "Requests to /v1, by route: api, or webhook_<provider>.",
            ("route",),
            registry=registry,
        )
        self.requests_without_trace = Counter(
            "acf_requests_without_trace",
            "Requests to /v1 that came without a valid traceparent (a new trace was "
            "started), by route: the propagation rate is 1 - this / acf_requests.",
            ("route",),
            registry=registry,
        )


class LlmFamilies:
    """The LLM pipeline's families (DESIGN §16), fed by its progress events. Labels:
    ``agent``, ``model`` and ``config_version`` besides ``tenant``; ``endpoint`` for the
    circuit (held to a bounded set of values by ``FabricMetrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        per_model = ("tenant", "agent", "model", "config_version")
        self.tokens = Counter(
            "acf_llm_tokens",
            "Tokens paid for model calls, by kind (prompt, completion).",
            (*per_model, "kind"),
            registry=registry,
        )
        self.cost = Counter(
            "acf_llm_cost",
            "Cost of model calls from the agent's price table (its currency), priced models only.",
            per_model,
            registry=registry,
        )
        self.requests = Counter(
            "acf_llm_requests",
            "HTTP requests to the model, retries and fallbacks included.",
            per_model,
            registry=registry,
        )
        self.ttft = Histogram(
            "acf_llm_time_to_first_token_seconds",
            "Time to the first streamed token of a completion.",
            per_model,
            registry=registry,
            buckets=TTFT_BUCKETS,
        )
        self.tool_rounds = Histogram(
            "acf_llm_tool_rounds",
            "Rounds of tool calls per LLM turn run to its end.",
            ("tenant", "agent", "config_version"),
            registry=registry,
            buckets=TOOL_ROUND_BUCKETS,
        )
        self.cancelled = Counter(
            "acf_llm_generations_cancelled",
            "Generations whose stream was closed by a supersede (or a stop).",
            per_model,
            registry=registry,
        )
        self.tokens_saved = Counter(
            "acf_llm_tokens_saved",
            "Completion tokens a closed stream did not pay: the mean completion of the "
            "agent's model so far minus what the cancelled one had streamed (an estimate).",
            per_model,
            registry=registry,
        )
        self.retries = Counter(
            "acf_llm_retries",
            "Model requests retried (429, 5xx, connection errors, timeouts, cut streams).",
            per_model,
            registry=registry,
        )
        self.fallbacks = Counter(
            "acf_llm_fallback_models",
            "Times a fallback model was tried, by the model tried.",
            per_model,
            registry=registry,
        )
        self.circuit = Gauge(
            "acf_llm_circuit_state",
            "The endpoint's circuit breaker as this tenant's turns last saw it: "
            "0 closed, 1 half-open (a probe), 2 open.",
            ("tenant", "endpoint"),
            registry=registry,
        )
        self.enforcement = Counter(
            "acf_llm_enforcement_hits",
            "Replies that broke an enforcement rule, by rule and what was done.",
            ("tenant", "agent", "config_version", "rule", "action"),
            registry=registry,
        )


class TenantSeries:
    """One tenant's label children, bound once: an event costs a dict lookup or two."""

    __slots__ = (
        "absorbs",
        "attempt_failures",
        "attempts",
        "confirmations_requested",
        "delivered",
        "delivery_cut",
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

    def __init__(self, f: Families, tenant: str) -> None:
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
        self.delivery_cut = f.deliveries.labels(tenant, "cut")
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
