"""FabricMetrics at the edges: the outbox (deliveries, retries, delivery latency), tools,
confirmations, and what the HTTP layer reports (messages, rate limits)."""

import pytest

from acf.domain.events import EventKind
from acf.observability import FabricMetrics
from acf.observability import metrics as m
from tests.unit.test_metrics import ev, samples, value


@pytest.fixture
def metrics() -> FabricMetrics:
    return FabricMetrics()


def test_cut_parts_are_counted_and_forgotten(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.RESPONSE_QUEUED, "t1", 1_000, turn="a", position=p, text="x")
            for p in range(3)
        ]
    )
    metrics.observe([ev(EventKind.REPLY_CUT, "t1", 2_000, turn="a", positions=[1, 2])])
    found = samples(metrics)
    assert value(found, "acf_deliveries_total", tenant="t1", status="cut") == 2
    assert set(metrics._queued_at) == {("a", 0)}  # the cut rows will never be delivered


def test_deliveries_retries_and_delivery_latency(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.RESPONSE_QUEUED, "t1", 1_000, turn="a", position=0, text="hi"),
            ev(EventKind.RESPONSE_QUEUED, "t1", 1_000, turn="a", position=1, text="more"),
            ev(EventKind.RESPONSE_QUEUED, "t2", 5_000, turn="b", position=0, text="yo"),
        ]
    )
    metrics.observe(
        [
            # Delivered on the third attempt, 250 ms after it was queued.
            ev(EventKind.RESPONSE_DELIVERED, "t1", 1_250, turn="a", position=0, attempt=3),
            # The relay's own data names the turn; the correlation may not.
            ev(
                EventKind.RESPONSE_DELIVERED,
                "t1",
                3_000,
                turn=None,
                turn_id="a",
                position=1,
                attempt=1,
            ),
            ev(EventKind.RESPONSE_FAILED, "t2", 9_000, turn="b", position=0, attempt=2),
            # Queued by another process: the event says when.
            ev(
                EventKind.RESPONSE_DELIVERED,
                "t2",
                20_000,
                turn="c",
                position=0,
                attempt=1,
                queued_at_ms=10_000,
            ),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_responses_queued_total", tenant="t1") == 2
    assert value(found, "acf_responses_queued_total", tenant="t2") == 1
    d = "acf_deliveries_total"
    assert value(found, d, tenant="t1", status="delivered") == 2
    assert value(found, d, tenant="t1", status="failed") == 0
    assert value(found, d, tenant="t2", status="delivered") == 1
    assert value(found, d, tenant="t2", status="failed") == 1
    assert value(found, "acf_delivery_retries_total", tenant="t1") == 2
    assert value(found, "acf_delivery_retries_total", tenant="t2") == 1
    lat = "acf_delivery_latency_seconds"
    assert value(found, f"{lat}_count", tenant="t1") == 2
    assert value(found, f"{lat}_sum", tenant="t1") == pytest.approx(0.25 + 2.0)
    assert value(found, f"{lat}_bucket", tenant="t1", le="0.25") == 1
    assert value(found, f"{lat}_count", tenant="t2") == 1  # the failed row has no latency
    assert value(found, f"{lat}_sum", tenant="t2") == pytest.approx(10.0)
    assert metrics._queued_at == {}  # delivered and failed rows are forgotten


def test_queue_times_kept_are_bounded(
    metrics: FabricMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(m, "MAX_PENDING_REPLIES", 3)
    metrics.observe(
        ev(EventKind.RESPONSE_QUEUED, at_ms=i, turn=f"turn-{i}", position=0) for i in range(10)
    )
    assert list(metrics._queued_at) == [("turn-7", 0), ("turn-8", 0), ("turn-9", 0)]
    metrics.observe(
        [
            ev(EventKind.RESPONSE_DELIVERED, at_ms=100, turn="turn-0", position=0, attempt=1),
            ev(EventKind.RESPONSE_DELIVERED, at_ms=100, turn="turn-9", position=0, attempt=1),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_deliveries_total", tenant="t1", status="delivered") == 2
    assert value(found, "acf_delivery_latency_seconds_count", tenant="t1") == 1
    assert value(found, "acf_delivery_latency_seconds_sum", tenant="t1") == pytest.approx(0.091)


def test_tool_outcomes_by_tool_and_duration(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.TOOL_EXECUTION_STARTED, "t1", tool="refund", policy="irreversible"),
            ev(EventKind.TOOL_EXECUTION_COMPLETED, "t1", tool="refund", duration_ms=120),
            ev(EventKind.TOOL_SIDE_EFFECT_COMPLETED, "t1", tool="refund"),
            ev(EventKind.TOOL_EXECUTION_FAILED, "t1", tool="refund", duration_ms=40, error="no"),
            ev(EventKind.TOOL_IN_DOUBT, "t1", tool="charge"),
            ev(EventKind.TOOL_REFUSED, "t1", tool="rm_rf", reason="not allowed"),
            ev(EventKind.TOOL_COMPENSATED, "t2", tool="book"),
            ev(EventKind.TOOL_EXECUTION_COMPLETED, "t2", tool="refund", duration_ms=3000),
        ]
    )
    found = samples(metrics)
    t = "acf_tool_executions_total"
    assert value(found, t, tenant="t1", tool="refund", outcome="completed") == 1
    assert value(found, t, tenant="t1", tool="refund", outcome="failed") == 1
    assert value(found, t, tenant="t1", tool="refund", outcome="in_doubt") == 0
    assert value(found, t, tenant="t1", tool="charge", outcome="in_doubt") == 1
    assert value(found, t, tenant="t1", tool="rm_rf", outcome="refused") == 1
    assert value(found, t, tenant="t2", tool="book", outcome="compensated") == 1
    assert value(found, t, tenant="t2", tool="refund", outcome="completed") == 1
    assert value(found, t, tenant="t2", tool="refund", outcome="failed") == 0
    d = "acf_tool_duration_seconds"
    assert value(found, f"{d}_count", tenant="t1", tool="refund") == 2
    assert value(found, f"{d}_sum", tenant="t1", tool="refund") == pytest.approx(0.16)
    assert value(found, f"{d}_sum", tenant="t2", tool="refund") == pytest.approx(3.0)
    assert value(found, f"{d}_count", tenant="t1", tool="charge") is None


def test_tool_names_are_bounded(metrics: FabricMetrics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_TOOL_LABELS", 2)
    metrics.observe(
        ev(EventKind.TOOL_REFUSED, tool=f"invented_{i}", reason="not allowed") for i in range(5)
    )
    metrics.observe([ev(EventKind.TOOL_REFUSED, tool="invented_0", reason="not allowed")])
    found = samples(metrics)
    t = "acf_tool_executions_total"
    assert value(found, t, tenant="t1", tool="invented_0", outcome="refused") == 2
    assert value(found, t, tenant="t1", tool="invented_1", outcome="refused") == 1
    assert value(found, t, tenant="t1", tool="invented_2", outcome="refused") is None
    assert value(found, t, tenant="t1", tool="other", outcome="refused") == 3


def test_confirmations(metrics: FabricMetrics) -> None:
    metrics.observe(
        [
            ev(EventKind.CONFIRMATION_REQUESTED, "t1", confirmation_id="c1", tool="refund"),
            ev(EventKind.CONFIRMATION_REQUESTED, "t1", confirmation_id="c2", tool="refund"),
            ev(EventKind.CONFIRMATION_RESOLVED, "t1", answer="yes", outcome="ok"),
            ev(EventKind.CONFIRMATION_EXPIRED, "t1", answer="expired", outcome=None),
            ev(EventKind.CONFIRMATION_REQUESTED, "t2", confirmation_id="c3", tool="refund"),
            ev(EventKind.CONFIRMATION_RESOLVED, "t2", answer="no", outcome=None),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_confirmations_requested_total", tenant="t1") == 2
    assert value(found, "acf_confirmations_requested_total", tenant="t2") == 1
    r = "acf_confirmations_resolved_total"
    assert value(found, r, tenant="t1", resolution="yes") == 1
    assert value(found, r, tenant="t1", resolution="expired") == 1
    assert value(found, r, tenant="t1", resolution="no") == 0
    assert value(found, r, tenant="t2", resolution="no") == 1
    assert value(found, r, tenant="t2", resolution="yes") == 0


def test_messages_and_rate_limits_come_from_the_http_layer(metrics: FabricMetrics) -> None:
    metrics.message_accepted("t1", duplicate=False)
    metrics.message_accepted("t1", duplicate=False)
    metrics.message_accepted("t1", duplicate=True)
    metrics.rate_limited("t2")
    # The store's own message events are not counted again.
    metrics.observe([ev(EventKind.MESSAGE_RECEIVED, "t1"), ev(EventKind.MESSAGE_DUPLICATE, "t1")])
    found = samples(metrics)
    assert value(found, "acf_messages_total", tenant="t1", result="accepted") == 2
    assert value(found, "acf_messages_total", tenant="t1", result="duplicate") == 1
    assert value(found, "acf_messages_total", tenant="t2", result="accepted") == 0
    assert value(found, "acf_rate_limited_total", tenant="t2") == 1
    assert value(found, "acf_rate_limited_total", tenant="t1") == 0
