"""The trace context an outbound call carries: the bound trace, an instrumented caller's
span (with its tracestate), or nothing; and the route a request is counted under."""

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from acf.entrypoints.http.middleware import route_of, trace_from
from acf.observability.trace_context import (
    current_trace_id,
    inject_trace,
    traced,
    valid_trace_id,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER = "4bf92f3577b34da6a3ce929d0e0e4736"


def injected() -> httpx.Headers:
    headers = httpx.Headers()
    inject_trace(headers)
    return headers


def test_nothing_is_passed_on_outside_any_trace() -> None:
    assert current_trace_id() is None
    assert "traceparent" not in injected()


def test_the_bound_trace_is_passed_on_with_a_new_parent_span_each_call() -> None:
    with traced(TRACE):
        assert current_trace_id() == TRACE
        first, second = injected()["traceparent"], injected()["traceparent"]
    assert current_trace_id() is None
    assert trace_from(first) == trace_from(second) == TRACE
    assert first.endswith("-01") and first != second


@pytest.mark.parametrize("bad", [None, "", "not-a-trace", "0" * 32, TRACE.upper(), TRACE + "0"])
def test_an_invalid_trace_id_binds_nothing(bad: str | None) -> None:
    assert not valid_trace_id(bad)
    with traced(bad):
        assert current_trace_id() is None
        assert "traceparent" not in injected()


def test_a_traceparent_the_caller_set_is_kept() -> None:
    mine = f"00-{OTHER}-00f067aa0ba902b7-01"
    headers = httpx.Headers({"TraceParent": mine})
    with traced(TRACE):
        inject_trace(headers)
    assert headers.get_list("traceparent") == [mine]


def remote_span(trace_id: str) -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(
            int(trace_id, 16),
            0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=TraceState([("vendor", "value")]),
        )
    )


def test_a_current_span_in_the_bound_trace_is_the_parent_with_its_tracestate() -> None:
    with traced(TRACE), trace.use_span(remote_span(TRACE)):
        headers = injected()
    assert headers["traceparent"] == f"00-{TRACE}-00f067aa0ba902b7-01"
    assert headers["tracestate"] == "vendor=value"


def test_a_current_span_of_another_trace_yields_to_the_bound_trace() -> None:
    with traced(TRACE), trace.use_span(remote_span(OTHER)):
        headers = injected()
    assert trace_from(headers["traceparent"]) == TRACE
    assert "tracestate" not in headers


def test_a_recorded_span_is_the_parent_when_no_trace_is_bound() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("call") as span:
        headers = injected()
        own = span.get_span_context()
    assert headers["traceparent"].startswith(f"00-{own.trace_id:032x}-{own.span_id:016x}-")


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/messages", "api"),
        ("/v1/sessions/abc/events", "api"),
        ("/v1/channels/whatsapp/acme", "webhook_whatsapp"),
        ("/v1/channels/twilio/acme/status", "webhook_twilio"),
        ("/v1/channels/telegram/acme/", "webhook_telegram"),
        ("/v1/channels/email/acme/sendgrid", "webhook_email"),
        ("/v1/channels/fax/acme", "webhook_other"),
        ("/v1/channels/", "webhook_other"),
        ("/healthz", None),
        ("/metrics", None),
        ("/docs", None),
        ("/", None),
        ("/v1", None),
    ],
)
def test_requests_are_counted_by_route(path: str, route: str | None) -> None:
    assert route_of(path) == route
