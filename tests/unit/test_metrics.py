"""FabricMetrics: hand-made committed events in, Prometheus exposition text out. Here: turns,
windows, attempts and failures, and what every series looks like; the outbox, tools,
confirmations and the HTTP layer's counts are in ``test_metrics_edges``."""

from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import GroupId, SessionId, TraceId, TurnId
from acf.observability import FabricMetrics
from acf.observability import metrics as m

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def ev(
    kind: EventKind,
    tenant: str = "t1",
    at_ms: int = 0,
    turn: str | None = "turn-1",
    **data: Any,
) -> FabricEvent:
    correlation = Correlation(
        tenant=tenant,
        trace_id=TraceId("0af7651916cd43dd8448eb211c80319c"),
        session_id=SessionId("s1"),
        turn_id=None if turn is None else TurnId(turn),
        group_id=GroupId("g1"),
        agent_version="1",
        config_version="c1",
    )
    return FabricEvent(kind, at_ms, correlation, data)


def samples(metrics: FabricMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def names(found: Samples) -> set[str]:
    return {name for name, _ in found}


@pytest.fixture
def metrics() -> FabricMetrics:
    return FabricMetrics()


def test_turns_by_outcome_are_counted_per_tenant(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.TURN_COMMITTED, "t1"),
            ev(EventKind.TURN_COMMITTED, "t1"),
            ev(EventKind.TURN_SUPERSEDED, "t1", reason="new_messages"),
            ev(EventKind.TURN_FAILED, "t1", error="deadline of 30000 ms exceeded"),
            ev(EventKind.TURN_COMMITTED, "t2"),
            ev(EventKind.TURN_SUPERSEDED, "t2", reason="irreversible_gate"),
            ev(EventKind.TURN_SUPERSEDED, "t2", reason="irreversible_gate"),
        ]
    )
    found = samples(metrics)
    turns = "acf_turns_total"
    assert value(found, turns, tenant="t1", outcome="committed") == 2
    assert value(found, turns, tenant="t1", outcome="superseded") == 1
    assert value(found, turns, tenant="t1", outcome="failed") == 1
    assert value(found, turns, tenant="t2", outcome="committed") == 1
    assert value(found, turns, tenant="t2", outcome="superseded") == 2
    assert value(found, turns, tenant="t2", outcome="failed") == 0
    sup = "acf_supersedes_total"
    assert value(found, sup, tenant="t1", reason="new_messages") == 1
    assert value(found, sup, tenant="t1", reason="irreversible_gate") == 0
    assert value(found, sup, tenant="t2", reason="irreversible_gate") == 2
    assert value(found, "acf_turn_failures_total", tenant="t1", reason="deadline") == 1
    assert value(found, "acf_turn_failures_total", tenant="t2", reason="deadline") == 0


def test_phase_latencies_come_from_the_events_data(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.WINDOW_CLOSED, "t1", reason="default", waited_ms=1500),
            ev(EventKind.WINDOW_CLOSED, "t1", reason="button", waited_ms=0),
            ev(EventKind.WINDOW_CLOSED, "t2", reason="typing", waited_ms=4200),
            ev(EventKind.TURN_COMMITTED, "t1", run_ms=800, latency_ms=2400),
            ev(EventKind.TURN_SUPERSEDED, "t1", reason="new_messages", run_ms=300),
            ev(EventKind.TURN_FAILED, "t2", error="RuntimeError: x", run_ms=9000, latency_ms=9500),
        ]
    )
    found = samples(metrics)
    wait = "acf_window_wait_seconds"
    assert value(found, f"{wait}_count", tenant="t1") == 2
    assert value(found, f"{wait}_sum", tenant="t1") == pytest.approx(1.5)
    assert value(found, f"{wait}_bucket", tenant="t1", le="1.0") == 1
    assert value(found, f"{wait}_bucket", tenant="t1", le="1.5") == 2
    assert value(found, f"{wait}_count", tenant="t2") == 1
    assert value(found, f"{wait}_bucket", tenant="t2", le="4.0") == 0
    assert value(found, f"{wait}_bucket", tenant="t2", le="5.0") == 1
    windows = "acf_windows_closed_total"
    assert value(found, windows, tenant="t1", reason="default") == 1
    assert value(found, windows, tenant="t1", reason="button") == 1
    assert value(found, windows, tenant="t2", reason="typing") == 1
    assert value(found, windows, tenant="t2", reason="default") is None

    run = "acf_turn_run_seconds"
    assert value(found, f"{run}_sum", tenant="t1", outcome="committed") == pytest.approx(0.8)
    assert value(found, f"{run}_sum", tenant="t1", outcome="superseded") == pytest.approx(0.3)
    assert value(found, f"{run}_count", tenant="t1", outcome="failed") == 0
    assert value(found, f"{run}_sum", tenant="t2", outcome="failed") == pytest.approx(9.0)
    latency = "acf_turn_latency_seconds"
    assert value(found, f"{latency}_sum", tenant="t1", outcome="committed") == pytest.approx(2.4)
    assert value(found, f"{latency}_bucket", tenant="t1", outcome="committed", le="2.0") == 0
    assert value(found, f"{latency}_bucket", tenant="t1", outcome="committed", le="3.0") == 1
    assert value(found, f"{latency}_sum", tenant="t2", outcome="failed") == pytest.approx(9.5)
    # A superseded turn has no end-to-end latency: its group goes on.
    assert value(found, f"{latency}_count", tenant="t1", outcome="superseded") is None


def test_events_without_timings_count_but_observe_no_duration(metrics: FabricMetrics) -> None:
    """Events stored before the timings were added (or with garbage in them)."""
    metrics.observe(
        [
            ev(EventKind.WINDOW_CLOSED, reason="default"),
            ev(EventKind.TURN_COMMITTED, run_ms="soon", latency_ms=-5),
            ev(EventKind.TOOL_EXECUTION_COMPLETED, tool="lookup", duration_ms=None),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_turns_total", tenant="t1", outcome="committed") == 1
    assert value(found, "acf_windows_closed_total", tenant="t1", reason="default") == 1
    assert value(found, "acf_window_wait_seconds_count", tenant="t1") == 0
    assert value(found, "acf_turn_run_seconds_count", tenant="t1", outcome="committed") == 0
    assert value(found, "acf_turn_latency_seconds_count", tenant="t1", outcome="committed") == 0
    assert value(found, "acf_tool_duration_seconds_count", tenant="t1", tool="lookup") is None


def test_failures_leases_flags_absorbs_and_force_completes(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.TURN_STARTED, "t1", attempt=1),
            ev(EventKind.TURN_ATTEMPT_FAILED, "t1", attempt=1, error="RuntimeError: boom"),
            ev(EventKind.TURN_STARTED, "t1", attempt=2, reason="retry"),
            ev(EventKind.TURN_ATTEMPT_FAILED, "t1", attempt=2, error="deadline of 5 ms exceeded"),
            ev(EventKind.TURN_STARTED, "t1", attempt=3, reason="retry"),
            ev(
                EventKind.TURN_ATTEMPT_FAILED,
                "t1",
                attempt=3,
                error="irreversible action in doubt: x",
            ),
            ev(
                EventKind.TURN_FAILED,
                "t1",
                error="the process stopped during each of 3 attempt(s)",
            ),
            ev(EventKind.SESSION_FLAGGED, "t1", reason="turn failed"),
            ev(EventKind.LEASE_LOST, "t2", turn=None, fence=4, holder="h"),
            ev(EventKind.LEASE_LOST, "t2", turn=None, fence=5, holder="h"),
            ev(EventKind.TURN_ABSORBED, "t2", from_seq=1, to_seq=3),
            ev(EventKind.TURN_FORCE_COMPLETED, "t2", reason="restart_bound"),
            ev(EventKind.TURN_FORCE_COMPLETED, "t2", reason="something new"),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_turn_attempts_total", tenant="t1") == 3
    assert value(found, "acf_turn_attempts_total", tenant="t2") == 0
    af = "acf_turn_attempt_failures_total"
    assert value(found, af, tenant="t1", reason="exception") == 1
    assert value(found, af, tenant="t1", reason="deadline") == 1
    assert value(found, af, tenant="t1", reason="in_doubt") == 1
    assert value(found, af, tenant="t1", reason="cancelled") == 0
    assert value(found, "acf_turn_failures_total", tenant="t1", reason="crashed") == 1
    assert value(found, "acf_sessions_flagged_total", tenant="t1") == 1
    assert value(found, "acf_sessions_flagged_total", tenant="t2") == 0
    assert value(found, "acf_lease_lost_total", tenant="t2") == 2
    assert value(found, "acf_lease_lost_total", tenant="t1") == 0
    assert value(found, "acf_absorbs_total", tenant="t2") == 1
    fc = "acf_force_completes_total"
    assert value(found, fc, tenant="t2", reason="restart_bound") == 1
    assert value(found, fc, tenant="t2", reason="pipeline") == 0
    assert value(found, fc, tenant="t2", reason="other") == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("deadline of 30000 ms exceeded", "deadline"),
        ("the pipeline was cancelled", "cancelled"),
        ("commit refused: version", "commit_refused"),
        ("PendingInput not handled by the pipeline: x", "pending_input"),
        ("irreversible action in doubt: x", "in_doubt"),
        ("the process stopped during each of 3 attempt(s)", "crashed"),
        ("RuntimeError: model provider down", "exception"),
        (None, "exception"),
    ],
)
def test_failure_reasons(error: object, reason: str) -> None:
    assert m.failure_reason(error) == reason


def test_events_without_a_metric_add_nothing(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.TYPING_STARTED, "t3"),
            ev(EventKind.WINDOW_OPENED, "t3", close_at_ms=5, reason="default"),
            ev(EventKind.WINDOW_EXTENDED, "t3", close_at_ms=9, reason="typing"),
            ev(EventKind.TURN_PROGRESS, "t3", name="step"),
            ev(EventKind.TURN_IRREVERSIBLE_STARTED, "t3", forced=None),
            ev(EventKind.RESPONSE_STATUS, "t3", status="read"),
        ]
    )
    found = samples(metrics)
    assert not any(("tenant", "t3") in labels for _, labels in found)


def test_every_metric_is_prefixed_and_per_tenant(metrics: FabricMetrics) -> None:
    metrics.observe([ev(EventKind.TURN_COMMITTED), ev(EventKind.TOOL_REFUSED, tool="x")])
    metrics.message_accepted("t1", duplicate=False)
    metrics.observe([ev(EventKind.WINDOW_CLOSED, reason="cap", waited_ms=1)])
    found = samples(metrics)
    assert found
    for name, labels in found:
        assert name.startswith("acf_"), name
        assert dict(labels).get("tenant") == "t1", (name, labels)
    expected = {
        "acf_turns_total",
        "acf_turn_attempts_total",
        "acf_turn_attempt_failures_total",
        "acf_turn_failures_total",
        "acf_supersedes_total",
        "acf_absorbs_total",
        "acf_force_completes_total",
        "acf_lease_lost_total",
        "acf_sessions_flagged_total",
        "acf_windows_closed_total",
        "acf_window_wait_seconds_bucket",
        "acf_turn_run_seconds_bucket",
        "acf_turn_latency_seconds_bucket",
        "acf_responses_queued_total",
        "acf_deliveries_total",
        "acf_delivery_retries_total",
        "acf_delivery_latency_seconds_bucket",
        "acf_tool_executions_total",
        "acf_confirmations_requested_total",
        "acf_confirmations_resolved_total",
        "acf_messages_total",
        "acf_rate_limited_total",
    }
    assert expected <= names(found), expected - names(found)


def test_unknown_reason_labels_fold_into_other(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.WINDOW_CLOSED, reason="a reason nobody planned", waited_ms=5),
            ev(EventKind.TURN_SUPERSEDED, reason=42),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_windows_closed_total", tenant="t1", reason="other") == 1
    assert value(found, "acf_supersedes_total", tenant="t1", reason="other") == 1


def test_each_instance_has_its_own_registry() -> None:
    one, two = FabricMetrics(), FabricMetrics()
    one.observe([ev(EventKind.TURN_COMMITTED)])
    assert value(samples(one), "acf_turns_total", tenant="t1", outcome="committed") == 1
    assert value(samples(two), "acf_turns_total", tenant="t1", outcome="committed") is None
    assert REGISTRY.get_sample_value("acf_turns_total", {"tenant": "t1"}) is None
    shared = CollectorRegistry()
    given = FabricMetrics(shared)
    given.observe([ev(EventKind.TURN_COMMITTED)])
    assert given.registry is shared
    labels = {"tenant": "t1", "outcome": "committed"}
    assert shared.get_sample_value("acf_turns_total", labels) == 1
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        FabricMetrics(shared)  # one FabricMetrics per registry


def test_events_without_a_valid_trace_id_are_counted_by_kind(metrics: FabricMetrics) -> None:
    traced = ev(EventKind.WINDOW_OPENED, "t4", close_at_ms=5, reason="default")
    untraced = replace(traced, correlation=replace(traced.correlation, trace_id=TraceId("x")))
    metrics.observe([traced, untraced, untraced])
    found = samples(metrics)
    counted = value(found, "acf_events_without_trace_total", tenant="t4", kind="window.opened")
    assert counted == 2
    assert not [
        k
        for k in found
        if k[0] == "acf_events_without_trace_total"
        and k
        != (
            "acf_events_without_trace_total",
            frozenset({("tenant", "t4"), ("kind", "window.opened")}),
        )
    ]
