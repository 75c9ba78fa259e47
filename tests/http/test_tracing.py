"""OpenTelemetry: a turn's phases are spans in the trace of the request that started it."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from acf.entrypoints.http.context import ApiSettings
from acf.observability.tracing import configure_tracing
from tests.http.conftest import Api, config, serve_api, settled

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(tmp_path: Path, exporter: InMemorySpanExporter) -> AsyncIterator[Api]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async for served in serve_api(tmp_path, config(), ApiSettings(), tracing=provider):
        yield served


async def test_every_phase_of_the_turn_is_a_span_in_the_callers_trace(
    traced: Api, exporter: InMemorySpanExporter
) -> None:
    async with traced.client() as c:
        r = await c.post(
            "/v1/messages",
            json={
                "agent": "support",
                "customer": "dan",
                "client_message_id": "t1",
                "text": "order 1002 status",
            },
            headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
        )
        await settled(c, r.json()["session_id"])
    spans = exporter.get_finished_spans()
    names = sorted(s.name for s in spans)
    assert names == ["acf.delivery", "acf.tool", "acf.turn.run", "acf.window"]
    assert {f"{s.context.trace_id:032x}" for s in spans} == {TRACE}
    run = next(s for s in spans if s.name == "acf.turn.run")
    assert run.attributes is not None and run.attributes["acf.tenant"] == "acme"
    assert run.start_time is not None and run.end_time is not None
    assert run.end_time >= run.start_time
    tool = next(s for s in spans if s.name == "acf.tool")
    assert tool.attributes is not None and tool.attributes["acf.tool"] == "lookup_order"


def test_tracing_is_off_by_default_and_refuses_an_unknown_exporter() -> None:
    assert configure_tracing("none") is None
    with pytest.raises(ValueError, match="expected one of"):
        configure_tracing("jaeger")
