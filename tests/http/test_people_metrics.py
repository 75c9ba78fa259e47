"""The metrics of people in the loop: which committed event feeds which series (labels held
to their known values), what the mode watch sets itself, and an operator's reply counted
on the served ``/metrics``."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.observability.metrics import FabricMetrics
from tests.http.people import People, handed_off, serve_people


def event(event_kind: EventKind, /, tenant: str = "acme", **data: Any) -> FabricEvent:
    correlation = Correlation(tenant, "4bf92f3577b34da6a3ce929d0e0e4736")
    return FabricEvent(event_kind, 1_000, correlation, data)


def samples(metrics: FabricMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: FabricMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


@pytest.mark.parametrize(
    ("kind", "data", "name", "labels", "expected"),
    [
        (
            EventKind.SESSION_HANDED_OFF,
            {"source": "pipeline"},
            "acf_handoffs_total",
            {"source": "pipeline"},
            1,
        ),
        (
            EventKind.SESSION_HANDED_OFF,
            {"source": "operator"},
            "acf_handoffs_total",
            {"source": "operator"},
            1,
        ),
        (
            EventKind.SESSION_HANDED_OFF,
            {"source": "rule"},
            "acf_handoffs_total",
            {"source": "rule"},
            1,
        ),
        (
            EventKind.SESSION_HANDED_OFF,
            {"source": "??"},
            "acf_handoffs_total",
            {"source": "other"},
            1,
        ),
        (EventKind.TURN_COMMITTED, {"kind": "human"}, "acf_operator_replies_total", {}, 1),
        (
            EventKind.ABUSE_SUSPECTED,
            {"detector": "injection_storm"},
            "acf_abuse_suspected_total",
            {"detector": "injection_storm"},
            1,
        ),
        (
            EventKind.ABUSE_SUSPECTED,
            {"detector": "made_up"},
            "acf_abuse_suspected_total",
            {"detector": "other"},
            1,
        ),
        (EventKind.ABUSE_COOLDOWN_STARTED, {}, "acf_abuse_cooldowns_total", {}, 1),
        (
            EventKind.ABUSE_MESSAGES_DROPPED,
            {"from_seq": 3, "to_seq": 7},
            "acf_messages_dropped_total",
            {},
            4,
        ),
        (
            EventKind.RATE_EXCEEDED,
            {"channel": "whatsapp"},
            "acf_rate_exceeded_total",
            {"channel": "whatsapp"},
            1,
        ),
        (
            EventKind.RATE_EXCEEDED,
            {"channel": "pigeon"},
            "acf_rate_exceeded_total",
            {"channel": "other"},
            1,
        ),
    ],
)
def test_each_event_feeds_its_series(
    kind: EventKind, data: dict[str, Any], name: str, labels: dict[str, str], expected: float
) -> None:
    metrics = FabricMetrics()
    metrics.observe([event(kind, **data)])
    assert value(metrics, name, tenant="acme", **labels) == expected


def test_replies_are_human_turns_a_drop_needs_a_range_and_tenants_stay_apart() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            event(EventKind.ABUSE_MESSAGES_DROPPED, from_seq=3),
            event(EventKind.ABUSE_MESSAGES_DROPPED, from_seq="3", to_seq=5),
            event(EventKind.TURN_COMMITTED, tenant="globex", kind="human"),
            event(EventKind.TURN_COMMITTED, tenant="globex", kind="human"),
            event(EventKind.TURN_COMMITTED, kind="agent"),
            event(EventKind.TURN_COMMITTED, kind="drop"),
            # written by the adapter: the reply is counted from its turn, never twice
            event(EventKind.OPERATOR_REPLIED, tenant="globex"),
        ]
    )
    assert value(metrics, "acf_messages_dropped_total", tenant="acme") is None
    assert value(metrics, "acf_operator_replies_total", tenant="globex") == 2
    assert value(metrics, "acf_operator_replies_total", tenant="acme") is None


def test_the_mode_watch_sets_breaches_and_the_waiting_gauge() -> None:
    metrics = FabricMetrics()
    metrics.people.sla_breached("acme")
    metrics.people.handoffs_waiting("acme", 4)
    metrics.people.handoffs_waiting("acme", 2)
    # A breach's event is written by the adapter: an event passing here counts nothing more.
    metrics.observe([event(EventKind.HANDOFF_SLA_BREACHED)])
    assert value(metrics, "acf_handoff_sla_breaches_total", tenant="acme") == 1
    assert value(metrics, "acf_handoffs_waiting", tenant="acme") == 2


def test_a_turn_standing_down_for_a_mode_is_its_own_supersede_reason() -> None:
    metrics = FabricMetrics()
    metrics.observe([event(EventKind.TURN_SUPERSEDED, reason="mode", mode="human")])
    assert value(metrics, "acf_supersedes_total", tenant="acme", reason="mode") == 1


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[People]:
    async for served in serve_people(tmp_path):
        yield served


async def test_an_operators_reply_is_on_the_served_metrics(people: People) -> None:
    session_id = await handed_off(people)
    async with people.operator("ana") as ana:
        assert (await ana.post(f"/v1/sessions/{session_id}/claim")).status_code == 200
        r = await ana.post(f"/v1/sessions/{session_id}/operator-messages", json={"text": "Hi"})
        assert r.status_code == 202, r.text
    async with httpx.AsyncClient(base_url=people.api.base_url) as c:
        body = (await c.get("/metrics")).text
    assert 'acf_operator_replies_total{tenant="acme"} 1.0' in body
