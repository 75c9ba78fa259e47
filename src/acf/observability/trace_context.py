"""The trace the running work belongs to, and the W3C Trace Context it passes on.

acf works in three places: an HTTP request (its trace from the caller's ``traceparent``,
or new), a turn (the trace stored with it: the one of the request that brought its first
message) and the relay sending a reply (its turn's trace). Each binds its trace id here
(``traced``) for as long as it runs; every outbound HTTP call made meanwhile — a tool
backend, a channel provider, an agent — gets a ``traceparent`` in that trace
(``inject_trace``, called by the process's HTTP client), so what the callee records joins
the customer's trace (seed 002 R6, D-AG-006). The trace id is also bound to every log line
written meanwhile.

The parent span of the call is the current OpenTelemetry span when there is one in that
trace (an instrumented caller, with its ``tracestate``); otherwise — the turn runner and
the relay run outside any request — a span id made for the call, in the bound trace.
"""

import random
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_ZERO = "0" * 32
_current: ContextVar[str | None] = ContextVar("acf_trace_id", default=None)
_span_ids = random.Random()  # unique enough for a parent span id; never a secret


def valid_trace_id(trace_id: object) -> bool:
    """A W3C trace id: 32 lowercase hex characters, not all zeros."""
    return isinstance(trace_id, str) and bool(_TRACE_ID.match(trace_id)) and trace_id != _ZERO


def current_trace_id() -> str | None:
    """The trace id bound by the innermost ``traced``, if any."""
    return _current.get()


@contextmanager
def traced(trace_id: str | None) -> Iterator[None]:
    """Within the block, outbound calls and log lines carry ``trace_id`` (an invalid or
    missing one binds nothing). Tasks created in the block keep it (they copy the
    context)."""
    if not valid_trace_id(trace_id):
        yield
        return
    token = _current.set(trace_id)
    # Reset by token: ``bound_contextvars`` copies the whole context to save what it replaces.
    logged = structlog.contextvars.bind_contextvars(trace_id=trace_id)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**logged)
        _current.reset(token)


def outbound_context() -> otel_context.Context | None:
    """The OpenTelemetry context whose span is the parent of an outbound call now: the
    current span when it is in the bound trace (or nothing is bound), else a remote span
    in the bound trace; None when there is no trace to pass on."""
    bound = _current.get()
    current = trace.get_current_span().get_span_context()
    if current.is_valid and (bound is None or f"{current.trace_id:032x}" == bound):
        return otel_context.get_current()
    if bound is None:
        return None
    parent = SpanContext(
        int(bound, 16),
        _span_ids.getrandbits(64) | 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def inject_trace(headers: MutableMapping[str, str]) -> None:
    """Add ``traceparent`` (and ``tracestate`` when there is one) for the running work's
    trace to ``headers``, through OpenTelemetry's configured propagator; a ``traceparent``
    the caller set is kept."""
    if "traceparent" in headers:
        return
    context = outbound_context()
    if context is not None:
        propagate.inject(headers, context=context)
