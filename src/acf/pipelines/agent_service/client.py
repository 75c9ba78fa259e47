"""``AgentServiceClient``: one HTTP request at a time to an agent service (seed 004 Story 1,
DESIGN §16). Retries, resumes and the circuit breaker are ``execution``'s.

``stream`` makes ONE ``POST /v1/agents/{profile}/execute`` and yields its events, parsed by
``protocol.parse_event``, until a final one (``ASK_USER``, ``COMPLETE``, ``ERROR``); anything
else ends in ``CallFailed`` (``failures`` classifies it). Closing the iterator early
(``aclose``, or the consuming task cancelled while it waits for an event) closes the HTTP
response at once, so the service sees the disconnect. Iterate it inside
``contextlib.aclosing``: a consumer cancelled between two events leaves the generator
suspended, and only ``aclose`` then closes the response without waiting for the garbage
collector.

Timeouts, in real time (``ClientTimeouts``): connecting; the first event of the stream
(the answer's headers included; SSE comments such as ``: keepalive`` are no event); the
whole stream up to its final event, cut shorter by ``within_s`` (the turn's deadline).

Every event must carry an ``id:`` that differs from the previous event's (an event without
one would inherit it, by the SSE rules): the execution resumes a cut stream from the last
id and skips ids it has seen, so an event it could not place is a ``PROTOCOL`` failure.

The API key goes only into the ``X-API-Key`` header: it is masked in every message of a
``CallFailed`` and never in a ``repr``.
"""

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import EventSource, ServerSentEvent
from pydantic import BaseModel, ValidationError

from acf.observability.redaction import redact_text, register_secret, secrets_pattern
from acf.pipelines.agent_service.failures import (
    MAX_MESSAGE_CHARS,
    CallFailed,
    FailureKind,
    kind_for_status,
    parse_retry_after,
)
from acf.pipelines.agent_service.protocol import (
    API_KEY_HEADER,
    EXECUTE_PATH,
    FINAL,
    HEALTH_PATH,
    KEY_HEADER,
    LAST_EVENT_HEADER,
    SESSION_HEADER,
    SESSION_PATH,
    AgentEvent,
    ExecuteRequest,
    HealthBody,
    ProtocolError,
    SessionStatusBody,
    Wire,
    parse_event,
)
from acf.pipelines.llm.breaker import endpoint_key

MAX_ERROR_BODY_BYTES = 4096
"""Of a non-2xx answer, at most this much is read (and ``MAX_MESSAGE_CHARS`` of it kept)."""
MAX_JSON_BODY_BYTES = 1 << 20
"""A longer session status or health answer is a ``PROTOCOL`` failure."""
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """Seconds, in real time."""

    connect_s: float = 5.0
    first_event_s: float = 60.0
    """From sending the request to the stream's first event (also any GET's whole answer)."""
    stream_s: float = 300.0
    """From sending the request to the stream's final event."""


@dataclass(frozen=True, slots=True)
class StreamedEvent:
    """One event of an execution's stream."""

    id: str
    """Its SSE ``id:`` (always present: an event without one is a ``PROTOCOL`` failure)."""
    event: AgentEvent
    agent_session_id_header: str | None
    """The answer's ``X-Agent-Session-Id`` header."""


_Body = TypeVar("_Body", bound=BaseModel)


class _ErrorBody(Wire):
    """What a service's error answer may say, under the names services use."""

    message: str | None = None
    error: str | None = None
    detail: str | None = None


class AgentServiceClient:
    """Speaks the agent service protocol to one base URL (without ``/v1``) over a pool of
    at most ``max_connections`` connections (``transport``, when given, replaces httpx's
    own and its pool). ``api_key`` is the resolved secret, sent as ``X-API-Key``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeouts: ClientTimeouts = ClientTimeouts(),
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.endpoint = endpoint_key(self.base_url)
        self.timeouts = timeouts
        self._key = api_key or None
        if self._key is not None:
            register_secret(self._key)
        self._secrets = secrets_pattern([self._key] if self._key else [])
        self._http = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # Reads are bounded here, by event (first event, whole stream), not per chunk.
            timeout=httpx.Timeout(None, connect=timeouts.connect_s),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"AgentServiceClient({self.endpoint!r})"

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called (no request can be made any more)."""
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close every connection of the pool."""
        await self._http.aclose()

    async def stream(
        self,
        profile: str,
        request: ExecuteRequest,
        *,
        key: str,
        last_event_id: str | None = None,
        traceparent: str | None = None,
        within_s: float | None = None,
    ) -> AsyncGenerator[StreamedEvent, None]:
        """One execute request of ``request`` with ``key`` as its
        ``Idempotency-Key``: its events until the final one, then it returns. Raises
        ``CallFailed`` when the request fails, or the stream breaks, ends or times out
        before a final event. ``within_s`` bounds the whole stream below the configured
        stream timeout."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        window = self.timeouts.stream_s
        if within_s is not None:
            window = max(0.0, min(window, within_s))
        stream_end = started + window
        first_by = min(stream_end, started + self.timeouts.first_event_s)
        headers = self._headers(EVENT_STREAM, key, last_event_id, traceparent)
        headers["Content-Type"] = "application/json"
        headers["Cache-Control"] = "no-store"
        headers["Accept-Encoding"] = "identity"  # a compressed stream arrives in lumps
        url = self.base_url + EXECUTE_PATH.format(profile=quote(profile, safe=""))
        sent = self._http.build_request(
            "POST", url, content=request.model_dump_json(), headers=headers
        )
        first_window = min(window, self.timeouts.first_event_s)
        response = await self._send(sent, first_by, first_window)
        try:
            await self._check_status(response)
            if _media_type(response) != EVENT_STREAM:
                shown = _media_type(response)[:60] or "none"
                raise CallFailed(FailureKind.PROTOCOL, f"expected {EVENT_STREAM}, got {shown!r}")
            header = response.headers.get(SESSION_HEADER)
            events = EventSource(response).aiter_sse()
            try:
                previous: str | None = None
                while True:
                    if previous is None:
                        sse = await self._next(events, first_by, True, first_window)
                    else:
                        sse = await self._next(events, stream_end, False, window)
                    if sse.event == "message" and not sse.data:
                        continue  # a block with only ``retry:`` or ``id:``: no event
                    previous = _event_id(sse, previous)
                    event = self._parse(sse)
                    yield StreamedEvent(previous, event, header)
                    if event.type in FINAL:
                        return
            finally:
                await events.aclose()
        finally:
            await response.aclose()

    async def session_status(self, agent_session_id: str) -> SessionStatusBody:
        """``GET /v1/sessions/{id}``: the service's view of an agent session. Raises
        ``CallFailed`` (``BAD_REQUEST`` with status 404 for an unknown session)."""
        path = SESSION_PATH.format(agent_session_id=quote(agent_session_id, safe=""))
        return await self._get(path, SessionStatusBody)

    async def health(self) -> HealthBody:
        """``GET /health``. Raises ``CallFailed`` when the service does not answer 2xx (it
        answers 503 when down)."""
        return await self._get(HEALTH_PATH, HealthBody)

    async def _get(self, path: str, model: type[_Body]) -> _Body:
        loop = asyncio.get_running_loop()
        answer_by = loop.time() + self.timeouts.first_event_s
        sent = self._http.build_request("GET", self.base_url + path, headers=self._headers())
        response = await self._send(sent, answer_by, self.timeouts.first_event_s)
        try:
            await self._check_status(response)
            try:
                async with asyncio.timeout_at(answer_by):
                    body = await _read(response, MAX_JSON_BODY_BYTES + 1)
            except TimeoutError:
                detail = f"no whole answer within {self.timeouts.first_event_s:g} s"
                raise CallFailed(FailureKind.UNAVAILABLE, detail) from None
            except httpx.HTTPError as exc:
                detail = f"the answer broke ({type(exc).__name__})"
                raise CallFailed(FailureKind.UNAVAILABLE, detail) from None
        finally:
            await response.aclose()
        if len(body) > MAX_JSON_BODY_BYTES:
            raise CallFailed(FailureKind.PROTOCOL, f"{path}: answer longer than allowed")
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            detail = f"{path}: invalid or missing {', '.join(fields)}"[:MAX_MESSAGE_CHARS]
            raise CallFailed(FailureKind.PROTOCOL, detail) from None

    def _headers(
        self,
        accept: str = "application/json",
        key: str | None = None,
        last_event_id: str | None = None,
        traceparent: str | None = None,
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._key is not None:
            headers[API_KEY_HEADER] = self._key
        if key is not None:
            headers[KEY_HEADER] = key
        if last_event_id is not None:
            headers[LAST_EVENT_HEADER] = last_event_id
        if traceparent is not None:
            headers["traceparent"] = traceparent
        return headers

    async def _send(
        self, request: httpx.Request, answer_by: float, within_s: float
    ) -> httpx.Response:
        """``request`` sent, its answer's headers read by ``answer_by`` (loop time)."""
        try:
            async with asyncio.timeout_at(answer_by):
                return await self._http.send(request, stream=True)
        except TimeoutError:
            raise CallFailed(
                FailureKind.FIRST_EVENT_TIMEOUT, f"no answer within {within_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            # Refused, reset or closed before an answer, or a connect timeout.
            detail = f"connection to {self.endpoint} failed ({type(exc).__name__})"
            raise CallFailed(FailureKind.UNAVAILABLE, detail) from None

    async def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        try:
            async with asyncio.timeout(self.timeouts.connect_s):
                raw = await _read(response, MAX_ERROR_BODY_BYTES)
        except (TimeoutError, httpx.HTTPError):
            raw = b""
        detail = self.redact(_error_detail(raw))
        now_ms = time.time_ns() // 1_000_000  # a Retry-After date is wall time
        retry_after = parse_retry_after(response.headers.get("retry-after"), now_ms)
        message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        raise CallFailed(kind_for_status(status), message, status, retry_after)

    async def _next(
        self, events: AsyncIterator[ServerSentEvent], by: float, first: bool, window: float
    ) -> ServerSentEvent:
        """The stream's next SSE block, by ``by`` (loop time; ``window``: the seconds that
        gives from the request, for the message)."""
        try:
            async with asyncio.timeout_at(by):
                return await anext(events)
        except StopAsyncIteration:
            raise CallFailed(FailureKind.CUT, "the stream ended before a final event") from None
        except TimeoutError:
            if first:
                detail = f"no event within {window:g} s"
                raise CallFailed(FailureKind.FIRST_EVENT_TIMEOUT, detail) from None
            detail = f"no final event within {window:g} s"
            raise CallFailed(FailureKind.STREAM_TIMEOUT, detail) from None
        except httpx.HTTPError as exc:
            detail = f"the stream broke before a final event ({type(exc).__name__})"
            raise CallFailed(FailureKind.CUT, detail) from None

    def _parse(self, sse: ServerSentEvent) -> AgentEvent:
        try:
            return parse_event(sse.event, sse.data)
        except ProtocolError as exc:
            raise CallFailed(FailureKind.PROTOCOL, self.redact(str(exc))) from None

    def redact(self, text: str) -> str:
        """``text`` safe to show: the API key and any credential-shaped text masked, at
        most ``MAX_MESSAGE_CHARS`` kept (for what the service wrote, such as an ``ERROR``
        event's message)."""
        if self._key is not None:
            text = text.replace(self._key, "***")
        return redact_text(text, self._secrets)[:MAX_MESSAGE_CHARS]


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.partition(";")[0].strip().lower()


def _event_id(sse: ServerSentEvent, previous: str | None) -> str:
    """The id of the event ``sse``; ``PROTOCOL`` when it has none (or repeats the
    previous event's, which is what an event without one looks like)."""
    if not sse.id:
        raise CallFailed(FailureKind.PROTOCOL, f"{sse.event[:40]!r} event without an id")
    if sse.id == previous:
        raise CallFailed(FailureKind.PROTOCOL, f"event id {sse.id[:40]!r} repeated")
    return sse.id


async def _read(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of ``response``'s body."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def _error_detail(raw: bytes) -> str:
    """The message of an error answer: its JSON ``message``, ``error`` or ``detail``, else
    its text, on one line."""
    text = raw.decode("utf-8", "replace")
    try:
        body = _ErrorBody.model_validate_json(text)
    except ValidationError:
        said = text
    else:
        said = body.message or body.error or body.detail or ""
    return " ".join(said.split())
