"""Every phase span carries the configuration version's label and the agent version of its
turn (``acf.config_version``, ``acf.agent_version``: DESIGN §17)."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.observability.tracing import PhaseSpans


def test_a_turn_span_carries_its_config_version_label() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    correlation = Correlation(
        "acme",
        "0af7651916cd43dd8448eb211c80319c",
        "s1",
        "turn-1",
        "g1",
        agent_version="acf/1 rules/1",
        config_version="v3",
    )
    event = FabricEvent(EventKind.TURN_COMMITTED, 5_000, correlation, {"run_ms": 1_200})
    PhaseSpans(provider).observe([event])
    [span] = exporter.get_finished_spans()
    assert span.name == "acf.turn.run"
    assert span.attributes is not None
    assert span.attributes["acf.config_version"] == "v3"
    assert span.attributes["acf.agent_version"] == "acf/1 rules/1"


def test_a_held_turn_span_starts_at_its_run_and_names_the_hold() -> None:
    """``run_ms`` leaves a typing hold out (issue 23); the span still covers the run from its
    start to the commit, the hold included and named."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    correlation = Correlation("acme", "0af7651916cd43dd8448eb211c80319c", "s1", "turn-1", "g1")
    data = {"run_ms": 1_200, "held_ms": 3_000}
    PhaseSpans(provider).observe([FabricEvent(EventKind.TURN_COMMITTED, 10_000, correlation, data)])
    [span] = exporter.get_finished_spans()
    assert (span.start_time, span.end_time) == (5_800 * 1_000_000, 10_000 * 1_000_000)
    assert span.attributes is not None and span.attributes["acf.held_ms"] == 3_000
