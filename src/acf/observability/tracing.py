"""OpenTelemetry spans per phase of a turn, drawn from the committed events.

Each phase that ends in an event becomes a span with its real start and end (the event's
time minus the duration it carries): ``acf.window`` (accumulation), ``acf.turn.run`` (the
pipeline attempt up to the commit, supersede or failure), ``acf.tool`` (one tool
execution) and ``acf.delivery`` (queued to accepted by the channel). Every span of a turn
lies in the trace of the request that started it (the ``traceparent`` given to the API),
so a tracing backend shows the customer's request, the window, the run, the tools and the
delivery in one trace. Each span carries its event's correlation as ``acf.*`` attributes,
among them ``acf.config_version`` (the label of the configuration version the session is
pinned to, ``"v3"``) and ``acf.agent_version``.

Off by default: with no tracer provider configured, the OpenTelemetry API does nothing.
``configure_tracing("console")`` prints spans; ``"otlp"`` exports them when the ``otel``
extra is installed (``pip install 'acf[otel]'``; ``OTEL_EXPORTER_OTLP_*`` settings).
"""

import random
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    TracerProvider,
)

from acf.domain.events import EventKind, FabricEvent
from acf.extras import missing_extra

EXPORTERS = ("none", "console", "otlp")
_MS = 1_000_000  # nanoseconds

# kind -> (span name, the data field holding the phase's duration in ms)
_PHASES: Mapping[EventKind, tuple[str, str]] = {
    EventKind.WINDOW_CLOSED: ("acf.window", "waited_ms"),
    EventKind.TURN_COMMITTED: ("acf.turn.run", "run_ms"),
    EventKind.TURN_SUPERSEDED: ("acf.turn.run", "run_ms"),
    EventKind.TURN_FAILED: ("acf.turn.run", "run_ms"),
    EventKind.TOOL_EXECUTION_COMPLETED: ("acf.tool", "duration_ms"),
    EventKind.TOOL_EXECUTION_FAILED: ("acf.tool", "duration_ms"),
}


def _attributes(event: FabricEvent) -> dict[str, Any]:
    attrs: dict[str, Any] = {f"acf.{k}": v for k, v in event.correlation.fields().items()}
    attrs["acf.event"] = event.kind.value
    for name in ("tool", "outcome", "reason", "position", "attempt", "held_ms"):
        value = event.data.get(name)
        if isinstance(value, str | int | float | bool):
            attrs[f"acf.{name}"] = value
    return attrs


class PhaseSpans:
    """A listener of committed events (``ObservedUnitOfWork``) that records phase spans."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._tracer: Tracer = (provider or trace.get_tracer_provider()).get_tracer("acf")
        self._ids = random.Random()

    def _parent(self, trace_id: str) -> Any:
        try:
            tid = int(trace_id, 16)
        except ValueError:
            return None
        if tid == 0:
            return None
        context = SpanContext(
            tid, self._ids.getrandbits(64) | 1, is_remote=True, trace_flags=TraceFlags(1)
        )
        return trace.set_span_in_context(NonRecordingSpan(context))

    def _span(self, name: str, event: FabricEvent, started_ms: int) -> None:
        span = self._tracer.start_span(
            name,
            context=self._parent(event.correlation.trace_id),
            kind=SpanKind.INTERNAL,
            attributes=_attributes(event),
            start_time=started_ms * _MS,
        )
        span.end(end_time=event.at_ms * _MS)

    def observe(self, events: Iterable[FabricEvent]) -> None:
        for event in events:
            phase = _PHASES.get(event.kind)
            if phase is not None:
                duration = event.data.get(phase[1])
                if isinstance(duration, int) and duration >= 0:
                    # A turn's run_ms leaves out a typing hold (issue 23): its span starts
                    # at the run's start and covers the hold, named by ``acf.held_ms``.
                    held = event.data.get("held_ms")
                    duration += held if isinstance(held, int) and held > 0 else 0
                    self._span(phase[0], event, event.at_ms - duration)
            elif event.kind is EventKind.RESPONSE_DELIVERED:
                queued = event.data.get("queued_at_ms")
                if isinstance(queued, int):
                    self._span("acf.delivery", event, queued)


def configure_tracing(exporter: str) -> TracerProvider | None:
    """Install a global tracer provider exporting spans, or nothing for ``"none"``."""
    if exporter not in EXPORTERS:
        raise ValueError(f"tracing exporter: expected one of {EXPORTERS}, got {exporter!r}")
    if exporter == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = SdkTracerProvider(resource=Resource.create({"service.name": "acf"}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError:
            raise ValueError(str(missing_extra("otel", "tracing exporter otlp"))) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
