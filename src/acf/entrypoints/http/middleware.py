"""ASGI middleware: the body-size limit (413) and the trace id of each request.

The trace id comes from a valid W3C ``traceparent`` header, or is new; it is bound to every
log line of the request, handed to ingress (so the turn that answers the message carries
it) and returned in the ``traceparent`` and ``X-Trace-Id`` response headers. Outbound calls
made while the request runs carry it too. A ``/v1`` request that came without a valid
``traceparent`` is counted, by route (``route_of``), for the trace propagation rate.
"""

import json
import re
import secrets
from collections.abc import Callable

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acf.domain.ids import new_trace_id
from acf.observability.redaction import error_text
from acf.observability.trace_context import traced

log = structlog.get_logger("acf.http")

WEBHOOK_PREFIX = "/v1/channels/"
API_PREFIX = "/v1/"
WEBHOOK_PROVIDERS = frozenset({"whatsapp", "twilio", "telegram", "email"})
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def trace_from(header: str | None) -> str | None:
    """The trace id of a valid ``traceparent``: ids not all zeros; version 00 exactly, a
    later version by its version-00 prefix (W3C Trace Context), never version ff."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or parent_id == "0" * 16:
        return None
    return None if trace_id == "0" * 32 else trace_id


def route_of(path: str) -> str | None:
    """The route kind counted for trace propagation: ``api``, ``webhook_<provider>``
    (``webhook_other`` for an unknown provider), or None outside ``/v1`` (pages, health,
    metrics: no caller there passes a trace)."""
    if path.startswith(WEBHOOK_PREFIX):
        provider = path[len(WEBHOOK_PREFIX) :].partition("/")[0]
        return f"webhook_{provider if provider in WEBHOOK_PROVIDERS else 'other'}"
    if path.startswith(API_PREFIX):
        return "api"
    return None


async def send_json_error(send: Send, status: int, code: str, message: str) -> None:
    """Send a whole JSON error response (the API's error shape) on a raw ASGI channel."""
    body = json.dumps({"error": code, "message": message, "problems": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TraceMiddleware:
    """``on_request(route, traced)``: told of every ``/v1`` request, whether it came with
    a valid ``traceparent``."""

    def __init__(self, app: ASGIApp, on_request: Callable[[str, bool], None] | None = None) -> None:
        self.app = app
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"traceparent")
        given = trace_from(raw.decode("latin-1") if raw else None)
        trace_id = given or new_trace_id()
        if self.on_request is not None:
            route = route_of(str(scope.get("path", "")))
            if route is not None:
                self.on_request(route, given is not None)
        scope.setdefault("state", {})["trace_id"] = trace_id
        span_id = secrets.token_hex(8)

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"traceparent", f"00-{trace_id}-{span_id}-01".encode()),
                    (b"x-trace-id", trace_id.encode()),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        with traced(trace_id):  # its log lines and outbound calls
            await self.app(scope, receive, send_with_trace)


class NulPathMiddleware:
    """A path holding a NUL (``%00``) names nothing acf stores (PostgreSQL text never holds
    one, and refuses to look one up): 404 before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in str(scope.get("path", "")):
            await send_json_error(send, 404, "not_found", "no such resource: the path holds a NUL")
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (``webhook_bytes`` under ``/v1/channels/``, the
    providers' webhooks) with 413, by Content-Length or while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int, webhook_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.webhook_bytes = max_bytes if webhook_bytes is None else webhook_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        webhook = str(scope.get("path", "")).startswith(WEBHOOK_PREFIX)
        limit = self.webhook_bytes if webhook else self.max_bytes
        too_large = f"the request body exceeds {limit} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await send_json_error(send, 413, "too_large", too_large)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's body read: the app's handler answers 413.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited_receive, send)


class ErrorMiddleware:
    """A bug in a route becomes a JSON 500, logged with the request's trace id and sent
    with its trace headers (this runs inside ``TraceMiddleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("http.unexpected_error", path=scope.get("path"), error=error_text(exc))
            if started:
                return  # the response is under way: nothing better can be sent now
            await send_json_error(send, 500, "internal", "an unexpected error; it was logged")
