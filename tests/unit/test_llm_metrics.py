"""The LLM pipeline's metrics, from its progress events: tokens, cost, time to first token,
tool rounds, cancelled generations and the tokens that saved, retries, the circuit and
enforcement hits, per tenant, agent, model and config version."""

from typing import Any

from acf.domain.events import EventKind, FabricEvent
from acf.observability import FabricMetrics
from acf.observability import metrics as m
from tests.unit.test_metrics import ev, samples, value

MODEL = {"tenant": "t1", "agent": "support", "model": "m1", "config_version": "c1"}


def progress(name: str, **data: Any) -> FabricEvent:
    return ev(EventKind.TURN_PROGRESS, name=name, **data)


def completion(**data: Any) -> FabricEvent:
    body = {"agent": "support", "model": "m1", "purpose": "reply", "requests": 1}
    return progress("llm.completion", **{**body, **data})


def test_completions_count_tokens_cost_requests_and_ttft() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            completion(prompt_tokens=1000, completion_tokens=50, cost=0.0012, ttft_ms=300),
            completion(prompt_tokens=500, completion_tokens=0, requests=3),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_llm_tokens_total", **MODEL, kind="prompt") == 1500
    assert value(found, "acf_llm_tokens_total", **MODEL, kind="completion") == 50
    assert value(found, "acf_llm_cost_total", **MODEL) == 0.0012
    assert value(found, "acf_llm_requests_total", **MODEL) == 4
    assert value(found, "acf_llm_time_to_first_token_seconds_count", **MODEL) == 1
    assert value(found, "acf_llm_time_to_first_token_seconds_sum", **MODEL) == 0.3


def test_tool_rounds_per_turn() -> None:
    metrics = FabricMetrics()
    metrics.observe([progress("llm.turn", agent="support", tool_rounds=2)])
    found = samples(metrics)
    labels = {"tenant": "t1", "agent": "support", "config_version": "c1"}
    assert value(found, "acf_llm_tool_rounds_sum", **labels) == 2
    assert value(found, "acf_llm_tool_rounds_bucket", **labels, le="1.0") == 0
    assert value(found, "acf_llm_tool_rounds_bucket", **labels, le="2.0") == 1


def test_a_cancelled_generation_counts_the_tokens_it_saved_against_the_mean() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            completion(completion_tokens=100),
            completion(completion_tokens=300),
            completion(completion_tokens=5000, purpose="summary"),  # not a reply
            progress(
                "llm.generation_cancelled",
                agent="support",
                model="m1",
                completion_tokens_streamed=40,
                prompt_tokens_estimate=900,
            ),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_llm_generations_cancelled_total", **MODEL) == 1
    assert value(found, "acf_llm_tokens_saved_total", **MODEL) == 160


def test_a_cancellation_before_any_completion_saves_nothing_known() -> None:
    metrics = FabricMetrics()
    metrics.observe([progress("llm.generation_cancelled", agent="a", model="m1")])
    found = samples(metrics)
    labels = {**MODEL, "agent": "a"}
    assert value(found, "acf_llm_generations_cancelled_total", **labels) == 1
    assert value(found, "acf_llm_tokens_saved_total", **labels) is None


def test_retries_fallbacks_circuit_and_enforcement() -> None:
    metrics = FabricMetrics()
    endpoint = "http://127.0.0.1:9/v1"
    metrics.observe(
        [
            progress("llm.retry", agent="support", model="m1", reason="http_429", restart=False),
            progress("llm.fallback_model", agent="support", model="m2", previous_model="m1"),
            progress("llm.circuit", agent="support", endpoint=endpoint, state="open"),
            progress("enforcement.hit", agent="support", rule="claimed_action", action="fallback"),
            progress("enforcement.hit", agent="support", rule="made up", action="regenerate"),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_llm_retries_total", **MODEL) == 1
    assert value(found, "acf_llm_fallback_models_total", **{**MODEL, "model": "m2"}) == 1
    assert value(found, "acf_llm_circuit_state", tenant="t1", endpoint=endpoint) == 2
    metrics.observe([progress("llm.circuit", endpoint=endpoint, state="half_open")])
    assert value(samples(metrics), "acf_llm_circuit_state", tenant="t1", endpoint=endpoint) == 1
    hits = {"tenant": "t1", "agent": "support", "config_version": "c1"}
    assert (
        value(
            found,
            "acf_llm_enforcement_hits_total",
            **hits,
            rule="claimed_action",
            action="fallback",
        )
        == 1
    )
    assert (
        value(found, "acf_llm_enforcement_hits_total", **hits, rule="other", action="regenerate")
        == 1
    )


def test_llm_label_values_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(m, "MAX_LLM_LABELS", 2)
    metrics = FabricMetrics()
    metrics.observe([completion(model=f"m{n}", prompt_tokens=1) for n in range(4)])
    found = samples(metrics)
    models = {dict(labels)["model"] for name, labels in found if name == "acf_llm_tokens_total"}
    assert models == {"m0", "m1", "other"}


def test_other_progress_events_add_no_llm_series() -> None:
    metrics = FabricMetrics()
    metrics.observe([progress("step", step="x"), progress("llm.unknown", model="m1")])
    assert not any(name.startswith("acf_llm") for name, _ in samples(metrics))
