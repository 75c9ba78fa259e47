"""FabricMetrics fed with the events a real runtime committed (the harness, virtual clock).

Two tenants; in t1 a plain turn (its reply retried once by the provider), a turn superseded
by a correction, a turn that fails after its attempts, a turn that calls a tool; in t2 a
delivered reply and one the provider refuses for good. The counts must match what
happened, and the durations must match what the events' own timestamps say.
"""

from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind, FabricEvent
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.observability import FabricMetrics
from acf.ports.event_store import EventQuery
from acf.testing.harness import Harness, HarnessOptions
from acf.testing.pipeline import Script
from acf.testing.tools import ToolBackend

TENANTS = ("t1", "t2")
TOOL_DELAY_MS = 70

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def all_events(h: Harness, tenant: str) -> list[FabricEvent]:
    events: list[FabricEvent] = []
    after = 0
    while True:
        page = await h.store.events.query(tenant, EventQuery(after_id=after, limit=500))
        if not page:
            return events
        events += page
        assert page[-1].event_id is not None
        after = page[-1].event_id


def samples(metrics: FabricMetrics) -> Samples:
    body, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    got = found.get((name, frozenset(labels.items())))
    assert got is not None, f"no sample {name} {labels}"
    return got


def of(events: Iterable[FabricEvent], kind: EventKind) -> list[FabricEvent]:
    return [e for e in events if e.kind is kind]


@pytest.fixture
def options() -> HarnessOptions:
    script = Script(
        steps=(
            {"sleep": 2000, "when_text": "slow"},
            {"raise": "model provider down", "when_text": "explode"},
            {"call": "lookup", "args": {"order": 7}, "when_text": "order"},
        )
    )
    lookup = ToolBackend(ToolSpec("lookup", SideEffectPolicy.PURE), delay_ms=TOOL_DELAY_MS)
    return HarnessOptions(
        script=script,
        settings=AgentSettings(max_attempts=3, retry_backoff_ms=200),
        tenants=TENANTS,
        tools=(lookup,),
    )


async def test_metrics_match_what_the_runtime_did(tmp_path: Path, options: HarnessOptions) -> None:
    async with Harness(tmp_path, options) as h:
        h.channel.fail_next(1)  # alice's reply: refused once (a 5xx), then sent
        await h.send("alice", "hello, is anyone there?")
        await h.run_until_idle()
        await h.send("bob", "slow: book a table in Paris.")
        await h.advance(1000)
        await h.send("bob", "wait, I meant London.")  # supersedes the running turn
        await h.run_until_idle()
        await h.send("carol", "explode, please.")  # raises on each of 3 attempts
        await h.run_until_idle()
        await h.send("dave", "where is my order?")  # calls the lookup tool
        await h.run_until_idle()
        await h.send("erin", "hi from the other tenant.", tenant="t2")
        await h.run_until_idle()
        h.channel.fail_next(1, definite=True)  # erin's second reply: refused for good
        await h.send("erin", "and again.", tenant="t2")
        await h.run_until_idle()

        assert h.replies("alice") == ["echo: hello, is anyone there?"]
        assert h.replies("bob") == ["echo: slow: book a table in Paris. | wait, I meant London."]
        assert h.replies("carol") == ["Sorry, something went wrong; a person will follow up."]
        assert h.replies("erin") == ["echo: hi from the other tenant."]

        events = {t: await all_events(h, t) for t in TENANTS}
        metrics = FabricMetrics()
        for tenant in TENANTS:
            metrics.observe(events[tenant])
        found = samples(metrics)

        # -- counts: what happened ---------------------------------------------------
        turns = "acf_turns_total"
        assert value(found, turns, tenant="t1", outcome="committed") == 3  # alice, bob, dave
        assert value(found, turns, tenant="t1", outcome="superseded") == 1  # bob's first
        assert value(found, turns, tenant="t1", outcome="failed") == 1  # carol's
        assert value(found, turns, tenant="t2", outcome="committed") == 2
        assert value(found, turns, tenant="t2", outcome="superseded") == 0
        assert value(found, turns, tenant="t2", outcome="failed") == 0
        assert value(found, "acf_supersedes_total", tenant="t1", reason="new_messages") == 1
        # Attempts: alice, bob x2, carol x3, dave; then erin's two.
        assert value(found, "acf_turn_attempts_total", tenant="t1") == 7
        assert value(found, "acf_turn_attempts_total", tenant="t2") == 2
        af = "acf_turn_attempt_failures_total"
        assert value(found, af, tenant="t1", reason="exception") == 3
        assert value(found, af, tenant="t2", reason="exception") == 0
        assert value(found, "acf_turn_failures_total", tenant="t1", reason="exception") == 1
        assert value(found, "acf_sessions_flagged_total", tenant="t1") == 1
        assert value(found, "acf_sessions_flagged_total", tenant="t2") == 0

        d = "acf_deliveries_total"
        assert value(found, d, tenant="t1", status="delivered") == 4
        assert value(found, d, tenant="t1", status="failed") == 0
        assert value(found, d, tenant="t2", status="delivered") == 1
        assert value(found, d, tenant="t2", status="failed") == 1
        assert value(found, "acf_delivery_retries_total", tenant="t1") == 1
        assert value(found, "acf_delivery_retries_total", tenant="t2") == 0
        assert value(found, "acf_responses_queued_total", tenant="t1") == 4
        assert value(found, "acf_responses_queued_total", tenant="t2") == 2

        tools = "acf_tool_executions_total"
        assert value(found, tools, tenant="t1", tool="lookup", outcome="completed") == 1
        assert value(found, tools, tenant="t1", tool="lookup", outcome="failed") == 0
        assert ("acf_tool_executions_total", frozenset({("tenant", "t2")})) not in found
        assert value(
            found, "acf_tool_duration_seconds_sum", tenant="t1", tool="lookup"
        ) == pytest.approx(TOOL_DELAY_MS / 1000)

        # -- durations: the same as the events' own timestamps say -------------------
        for tenant in TENANTS:
            evs = events[tenant]
            opened = {e.correlation.turn_id: e.at_ms for e in of(evs, EventKind.WINDOW_OPENED)}
            closed = of(evs, EventKind.WINDOW_CLOSED)
            waits = [e.at_ms - opened[e.correlation.turn_id] for e in closed]
            wait = "acf_window_wait_seconds"
            assert value(found, f"{wait}_count", tenant=tenant) == len(closed)
            assert value(found, f"{wait}_sum", tenant=tenant) == pytest.approx(sum(waits) / 1000)
            assert sum(waits) > 0  # the windows really waited

            first_open: dict[str | None, int] = {}
            for e in of(evs, EventKind.WINDOW_OPENED):
                first_open.setdefault(e.correlation.group_id, e.at_ms)
            committed = of(evs, EventKind.TURN_COMMITTED)
            latencies = [e.at_ms - first_open[e.correlation.group_id] for e in committed]
            lat = "acf_turn_latency_seconds"
            assert value(found, f"{lat}_count", tenant=tenant, outcome="committed") == len(
                committed
            )
            assert value(found, f"{lat}_sum", tenant=tenant, outcome="committed") == (
                pytest.approx(sum(latencies) / 1000)
            )

            queued = {
                (e.correlation.turn_id, e.data["position"]): e.at_ms
                for e in of(evs, EventKind.RESPONSE_QUEUED)
            }
            delivered = of(evs, EventKind.RESPONSE_DELIVERED)
            sends = [
                e.at_ms - queued[(e.correlation.turn_id, e.data["position"])] for e in delivered
            ]
            dl = "acf_delivery_latency_seconds"
            assert value(found, f"{dl}_count", tenant=tenant) == len(delivered)
            assert value(found, f"{dl}_sum", tenant=tenant) == pytest.approx(sum(sends) / 1000)

            # The run time of each ended turn is its TurnRecord's.
            for outcome, kind in (
                ("committed", EventKind.TURN_COMMITTED),
                ("superseded", EventKind.TURN_SUPERSEDED),
                ("failed", EventKind.TURN_FAILED),
            ):
                runs = []
                for e in of(evs, kind):
                    assert e.correlation.turn_id is not None
                    record = await h.store.turns.get_record(tenant, e.correlation.turn_id)
                    assert record is not None
                    runs.append(record.ended_at_ms - record.started_at_ms)
                run = "acf_turn_run_seconds"
                assert value(found, f"{run}_count", tenant=tenant, outcome=outcome) == len(runs)
                assert value(found, f"{run}_sum", tenant=tenant, outcome=outcome) == (
                    pytest.approx(sum(runs) / 1000)
                )

        # The retried reply waited for the relay's backoff; bob's pipeline ran 2 s.
        assert value(found, "acf_delivery_latency_seconds_sum", tenant="t1") > 0
        assert value(found, "acf_turn_run_seconds_sum", tenant="t1", outcome="committed") >= 2.0
        # Carol's turn ran three attempts with backoff between them.
        assert value(found, "acf_turn_run_seconds_sum", tenant="t1", outcome="failed") > 0
