"""The process's client for outbound HTTP: channel providers, delivery URLs, tool backends.

httpx's API on aiohttp's connection pool (``httpx-aiohttp``, by httpx's maintainers):
httpcore's pool looks at each of its connections on every request, which cost the relay
about 1.3 ms of CPU per POST with 16 in flight; aiohttp's costs about 0.3 ms
(``docs/benchmarks.md``). What stays open is closed by ``aclose()``.

Every failure still arrives as an ``httpx.HTTPError``, as callers (channel senders, the
tool gateway) expect: the transport maps aiohttp's errors it knows, and the ones it does
not (a malformed status or header line: ``aiohttp.ClientResponseError``) become
``httpx.RemoteProtocolError``, as httpcore reports them. Header lines up to 64 KiB are
read, as httpcore reads them (aiohttp alone refuses lines over 8 KiB).

Every request carries the W3C Trace Context of the work that makes it (a request, a turn,
the relay's send: ``acf.observability.trace_context``), so a tool backend, a provider or an
agent sees the customer's trace.
"""

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from acf.observability.trace_context import inject_trace

TIMEOUT_S = 30.0
MAX_CONNECTIONS = 100
KEEPALIVE_S = 5.0
"""How long an idle connection is kept (httpx's default)."""
MAX_LINE_BYTES = 65_536


def outbound_client(
    timeout_s: float = TIMEOUT_S, max_connections: int = MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """A client whose requests time out after ``timeout_s`` (connect, read, pool), with at
    most ``max_connections`` open at once."""
    limits = httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE_S)

    def session() -> aiohttp.ClientSession:  # made on the first request, in its event loop
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=KEEPALIVE_S, ssl=httpx.create_ssl_context()
        )
        return aiohttp.ClientSession(
            connector=connector, max_line_size=MAX_LINE_BYTES, max_field_size=MAX_LINE_BYTES
        )

    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        transport=_Transport(limits=limits, client=session),
        event_hooks={"request": [_pass_trace]},
    )


async def _pass_trace(request: httpx.Request) -> None:
    """Runs in the caller's task, so it sees the trace the caller's work is bound to."""
    inject_trace(request.headers)


class _Transport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except aiohttp.ClientError as exc:
            raise _mapped(exc, request) from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _MappedStream(response.stream, request)
        return response


class _MappedStream(httpx.AsyncByteStream):
    """The response body, its aiohttp errors mapped as the request's."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except aiohttp.ClientError as exc:
            raise _mapped(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except aiohttp.ClientError as exc:
            raise _mapped(exc, self._request) from exc


def _mapped(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(exc) or repr(exc), request=request)
    return httpx.NetworkError(str(exc) or repr(exc), request=request)
