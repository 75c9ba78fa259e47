"""The agent service's and the router's metrics (seed 004 Story 8), from their progress
events and dead letters: executions by outcome, durations, time to first chunk, time to
each event by type, retries, resumes, errors, the circuit and the endpoint's health,
routing decisions and their latency, per tenant and agent, with bounded labels."""

from typing import Any

import pytest

from acf.domain.events import EventKind, FabricEvent
from acf.observability import FabricMetrics, agent_service_metrics
from acf.observability import metrics as m
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.agent_service.outcome import Ending
from acf.pipelines.agent_service.protocol import EventType
from acf.pipelines.routing.decide import Reason
from tests.unit.test_metrics import ev, samples, value

AGENT = {"tenant": "t1", "agent": "concierge", "config_version": "c1"}
ENDPOINT = "http://127.0.0.1:8700"
OTHER_AGENT = {"tenant": "t1", "agent": "other", "config_version": "c1"}


def progress(name: str, tenant: str = "t1", **data: Any) -> FabricEvent:
    return ev(EventKind.TURN_PROGRESS, tenant, name=name, **data)


def execution(**data: Any) -> FabricEvent:
    body = {
        "agent": "concierge",
        "profile": "orders",
        "endpoint": ENDPOINT,
        "outcome": "complete",
        "attempts": 1,
        "resumes": 0,
        "duration_ms": 2400,
    }
    return progress("agent_service.execution", **{**body, **data})


def test_an_execution_counts_its_outcome_duration_first_chunk_and_event_times() -> None:
    metrics = FabricMetrics()
    offsets = [["THOUGHT", 120], ["TOOL_START", 300], ["ANSWER_CHUNK", 900], ["COMPLETE", 2400]]
    metrics.observe(
        [
            execution(first_chunk_ms=900, first_event_ms=120, event_offsets_ms=offsets),
            execution(outcome="ask_user", duration_ms=600, event_offsets_ms=[["ASK_USER", 600]]),
        ]
    )
    found = samples(metrics)
    per_profile = {**AGENT, "profile": "orders"}
    requests = "acf_agent_service_requests_total"
    assert value(found, requests, **per_profile, outcome="complete") == 1
    assert value(found, requests, **per_profile, outcome="ask_user") == 1
    assert value(found, "acf_agent_service_request_seconds_count", **per_profile) == 2
    assert value(found, "acf_agent_service_request_seconds_sum", **per_profile) == 3.0
    assert value(found, "acf_agent_service_first_chunk_seconds_count", **per_profile) == 1
    assert value(found, "acf_agent_service_first_chunk_seconds_sum", **per_profile) == 0.9
    by_type = "acf_agent_service_event_seconds"
    assert value(found, f"{by_type}_sum", **AGENT, type="TOOL_START") == 0.3
    assert value(found, f"{by_type}_count", **AGENT, type="ASK_USER") == 1
    assert value(found, f"{by_type}_bucket", **AGENT, type="ANSWER_CHUNK", le="0.5") == 0
    assert value(found, f"{by_type}_bucket", **AGENT, type="ANSWER_CHUNK", le="1.0") == 1
    # A clean execution neither retried nor resumed nor failed.
    assert value(found, "acf_agent_service_retries_total", **AGENT) is None
    assert value(found, "acf_agent_service_errors_total", **AGENT, kind="unavailable") is None


def test_retries_resumes_and_errors_by_kind() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            execution(attempts=3, resumes=1),
            execution(outcome="failed", attempts=3, error_kind="unavailable"),
            execution(outcome="error", error_kind="agent_error"),
            execution(outcome="error", error_kind="something new"),
            execution(outcome="superseded", error_kind="cut"),  # not an error
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_agent_service_retries_total", **AGENT) == 4
    assert value(found, "acf_agent_service_resumes_total", **AGENT) == 1
    errors = "acf_agent_service_errors_total"
    assert value(found, errors, **AGENT, kind="unavailable") == 1
    assert value(found, errors, **AGENT, kind="agent_error") == 1
    assert value(found, errors, **AGENT, kind="other") == 1
    assert value(found, errors, **AGENT, kind="cut") is None
    superseded = {**AGENT, "profile": "orders", "outcome": "superseded"}
    assert value(found, "acf_agent_service_requests_total", **superseded) == 1


def test_malformed_execution_data_counts_the_execution_and_nothing_made_up() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            progress(
                "agent_service.execution",
                outcome="exploded",
                attempts=True,
                duration_ms=-5,
                first_chunk_ms="soon",
                event_offsets_ms=[["COMPLETE"], "THOUGHT", ["NEW_TYPE", 40], ["COMPLETE", -1]],
            )
        ]
    )
    found = samples(metrics)
    labels = {**OTHER_AGENT, "profile": "other"}
    assert value(found, "acf_agent_service_requests_total", **labels, outcome="other") == 1
    assert value(found, "acf_agent_service_request_seconds_count", **labels) is None
    assert value(found, "acf_agent_service_first_chunk_seconds_count", **labels) is None
    by_type = "acf_agent_service_event_seconds_count"
    assert value(found, by_type, **OTHER_AGENT, type="other") == 1
    assert value(found, by_type, **OTHER_AGENT, type="COMPLETE") is None
    assert value(found, "acf_agent_service_retries_total", **OTHER_AGENT) is None


def test_the_circuit_follows_its_events_and_the_health_the_entry_point_reads() -> None:
    metrics = FabricMetrics()
    metrics.observe([progress("agent_service.circuit", endpoint=ENDPOINT, state="open")])
    found = samples(metrics)
    assert value(found, "acf_agent_service_circuit_state", endpoint=ENDPOINT) == 2
    # A circuit event of another tenant moves the same process-wide gauge.
    metrics.observe([progress("agent_service.circuit", "t2", endpoint=ENDPOINT, state="closed")])
    assert value(samples(metrics), "acf_agent_service_circuit_state", endpoint=ENDPOINT) == 0

    metrics.set_agent_service_health(ENDPOINT, up=False, circuit="half_open")
    found = samples(metrics)
    assert value(found, "acf_agent_service_up", endpoint=ENDPOINT) == 0
    assert value(found, "acf_agent_service_circuit_state", endpoint=ENDPOINT) == 1
    metrics.set_agent_service_health(ENDPOINT, up=True, circuit=None)
    found = samples(metrics)
    assert value(found, "acf_agent_service_up", endpoint=ENDPOINT) == 1
    assert value(found, "acf_agent_service_circuit_state", endpoint=ENDPOINT) == 1
    metrics.set_agent_service_health(ENDPOINT, up=True, circuit="no such state")
    assert value(samples(metrics), "acf_agent_service_circuit_state", endpoint=ENDPOINT) == 1


def test_routing_decisions_by_route_and_reason_and_their_latency() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            progress("routing.decision", agent="concierge", route="agent", reason="command",
                     rule=0, decision_us=40),
            progress("routing.decision", agent="concierge", route="agent", reason="sticky",
                     decision_us=900),
            progress("routing.decision", agent="concierge", route="llm", reason="fallback",
                     fallback_from="agent", decision_us=150),
            progress("routing.decision", agent="concierge", route="llm", reason="guess"),
        ]
    )  # fmt: skip
    found = samples(metrics)
    decisions = "acf_routing_decisions_total"
    assert value(found, decisions, **AGENT, route="agent", reason="command") == 1
    assert value(found, decisions, **AGENT, route="agent", reason="sticky") == 1
    assert value(found, decisions, **AGENT, route="llm", reason="fallback") == 1
    assert value(found, decisions, **AGENT, route="llm", reason="other") == 1
    took = "acf_routing_decision_seconds"
    assert value(found, f"{took}_count", **AGENT) == 3
    assert value(found, f"{took}_sum", **AGENT) == pytest.approx(0.00109)
    assert value(found, f"{took}_bucket", **AGENT, le="0.0001") == 1


def test_dead_letters_are_counted_per_tenant() -> None:
    metrics = FabricMetrics()
    recorded = EventKind.DEAD_LETTER_RECORDED
    metrics.observe([ev(recorded, "t1"), ev(recorded, "t1"), ev(recorded, "t2")])
    found = samples(metrics)
    assert value(found, "acf_dead_letters_total", tenant="t1") == 2
    assert value(found, "acf_dead_letters_total", tenant="t2") == 1


def test_agent_service_label_values_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_LLM_LABELS", 2)
    metrics = FabricMetrics()
    metrics.observe([execution(profile=f"p{n}") for n in range(4)])
    metrics.observe(
        [progress("routing.decision", agent="concierge", route=f"r{n}") for n in range(4)]
    )
    for n in range(4):
        metrics.set_agent_service_health(f"http://10.0.0.{n}:80", up=True, circuit="closed")
    found = samples(metrics)
    profiles = {
        dict(labels)["profile"]
        for name, labels in found
        if name == "acf_agent_service_requests_total"
    }
    assert profiles == {"p0", "p1", "other"}
    routes = {dict(labels)["route"] for name, labels in found if name.startswith("acf_routing_d")}
    assert routes == {"r0", "r1", "other"}
    endpoints = {
        dict(labels)["endpoint"] for name, labels in found if name == "acf_agent_service_up"
    }
    assert endpoints == {"http://10.0.0.0:80", "http://10.0.0.1:80", "other"}


def test_the_label_sets_are_the_pipelines_own() -> None:
    """observability may not import the pipelines: its copies of their value sets must
    match, or a new value would read as ``other``."""
    m = agent_service_metrics
    assert {r.value for r in Reason} == m.ROUTING_REASONS
    assert {k.value for k in FailureKind} == m.AGENT_FAILURE_KINDS
    assert {t.value for t in EventType} == m.AGENT_EVENT_TYPES
    assert {e.value for e in Ending} == m.EXECUTION_OUTCOMES
