"""The LLM pipeline's metrics (DESIGN §16), from its progress events: tokens, cost, time
to first token, tool rounds, generations cancelled and the tokens that saved (estimated
from the agent's mean finished answer), retries, fallback models, the circuit per endpoint
and enforcement hits; per tenant, agent, model and config version (``FabricMetrics``
routes ``turn.progress`` named ``llm.*`` and ``enforcement.hit`` here)."""

from collections.abc import Callable, Mapping
from typing import Any

from acf.domain.events import FabricEvent
from acf.observability.metric_families import (
    CIRCUIT_STATES,
    ENFORCEMENT_ACTIONS,
    ENFORCEMENT_RULES,
    OTHER,
    TOKEN_KINDS,
    LlmFamilies,
)

Label = Callable[[str, object], str]
"""(label kind, value from event data) -> the label value, bounded per kind."""


def _known(value: object, known: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in known else OTHER


def _amount(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _seconds(data: Mapping[str, Any], name: str) -> float | None:
    amount = _amount(data, name)
    return None if amount is None else amount / 1000


class LlmMetrics:
    """Bookkeeping only (no I/O): each method takes one committed progress event."""

    def __init__(self, family: LlmFamilies, label: Label) -> None:
        self._f = family
        self._label = label
        self._completions: dict[tuple[str, ...], tuple[float, int]] = {}
        """(tenant, agent, model, config_version) -> completion tokens and completions."""

    def _per_model(self, e: FabricEvent) -> tuple[str, str, str, str]:
        return (
            e.correlation.tenant,
            self._label("agent", e.data.get("agent")),
            self._label("model", e.data.get("model")),
            self._label("config_version", e.correlation.config_version),
        )

    def completion(self, e: FabricEvent) -> None:
        f, labels, data = self._f, self._per_model(e), e.data
        for kind in TOKEN_KINDS:
            tokens = _amount(data, f"{kind}_tokens")
            if tokens:
                f.tokens.labels(*labels, kind).inc(tokens)
        cost = _amount(data, "cost")
        if cost is not None:
            f.cost.labels(*labels).inc(cost)
        f.requests.labels(*labels).inc(_amount(data, "requests") or 0)
        ttft = _seconds(data, "ttft_ms")
        if ttft is not None:
            f.ttft.labels(*labels).observe(ttft)
        completion = _amount(data, "completion_tokens")
        if completion is not None and data.get("purpose") == "reply":
            total, count = self._completions.get(labels, (0.0, 0))
            self._completions[labels] = (total + completion, count + 1)

    def turn(self, tenant: str, e: FabricEvent) -> None:
        rounds = _amount(e.data, "tool_rounds")
        if rounds is not None:
            agent = self._label("agent", e.data.get("agent"))
            version = self._label("config_version", e.correlation.config_version)
            self._f.tool_rounds.labels(tenant, agent, version).observe(rounds)

    def cancelled(self, e: FabricEvent) -> None:
        f, labels = self._f, self._per_model(e)
        f.cancelled.labels(*labels).inc()
        streamed = _amount(e.data, "completion_tokens_streamed")
        total, count = self._completions.get(labels, (0.0, 0))
        if streamed is not None and count:
            saved = round(total / count - streamed)
            if saved > 0:
                f.tokens_saved.labels(*labels).inc(saved)

    def retry(self, e: FabricEvent) -> None:
        self._f.retries.labels(*self._per_model(e)).inc()

    def fallback(self, e: FabricEvent) -> None:
        self._f.fallbacks.labels(*self._per_model(e)).inc()

    def circuit(self, tenant: str, e: FabricEvent) -> None:
        state = e.data.get("state")
        level = CIRCUIT_STATES.get(state) if isinstance(state, str) else None
        if level is not None:
            endpoint = self._label("endpoint", e.data.get("endpoint"))
            self._f.circuit.labels(tenant, endpoint).set(level)

    def enforcement_hit(self, tenant: str, e: FabricEvent) -> None:
        agent = self._label("agent", e.data.get("agent"))
        rule = _known(e.data.get("rule"), ENFORCEMENT_RULES)
        action = _known(e.data.get("action"), ENFORCEMENT_ACTIONS)
        version = self._label("config_version", e.correlation.config_version)
        self._f.enforcement.labels(tenant, agent, version, rule, action).inc()
