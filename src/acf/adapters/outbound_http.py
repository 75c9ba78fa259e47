"""The process's client for outbound HTTP: channel providers, delivery URLs, tool backends.

httpx's API on aiohttp's connection pool (``httpx-aiohttp``, by httpx's maintainers):
httpcore's pool looks at each of its connections on every request, which cost the relay
about 1.3 ms of CPU per POST with 16 in flight; aiohttp's costs about 0.3 ms
(``benchmarks/README.md``). Errors still arrive as ``httpx.HTTPError``; what stays open is
closed by ``aclose()``.
"""

import httpx
from httpx_aiohttp import AiohttpTransport

TIMEOUT_S = 30.0
MAX_CONNECTIONS = 100


def outbound_client(
    timeout_s: float = TIMEOUT_S, max_connections: int = MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """A client whose requests time out after ``timeout_s`` (connect, read, pool), with at
    most ``max_connections`` open at once."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s), transport=AiohttpTransport(limits=limits)
    )
