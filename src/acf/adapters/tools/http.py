"""HTTP tools: a tool whose backend is an HTTP endpoint (DESIGN §8).

The request carries the call's ``Idempotency-Key`` header, so a retry or a re-run of an
IDEMPOTENT tool reaches the backend with the same key. Header values may reference
secrets as ``${NAME}`` (an environment variable, read at call time; never stored in
configuration). The response decides the outcome:

- 2xx: success; the JSON body (or the text) is the recorded result;
- 4xx: a definite refusal (``ToolRefused``): nothing happened;
- 5xx, a timeout or a broken connection: the outcome is unknown (``OutcomeUnknown``):
  retried with the same key when the tool is IDEMPOTENT, in doubt otherwise.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from acf.config.secrets import resolve_secrets
from acf.config.tools import HTTP_METHODS
from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.ports.tool_backend import OutcomeUnknown, Tool, ToolCall


class ToolRefused(Exception):
    """The backend answered 4xx: it did not do it."""


@dataclass(frozen=True, slots=True)
class HttpToolConfig:
    method: str
    url: str
    """A template over the arguments: ``https://api.example.com/orders/{order_id}/refund``."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method.upper() not in HTTP_METHODS:
            raise InvalidValue(f"http tool: method must be one of {sorted(HTTP_METHODS)}")
        if not self.url.startswith(("http://", "https://")):
            raise InvalidValue("http tool: url must start with http:// or https://")


def http_tool(spec: ToolSpec, config: HttpToolConfig, client: httpx.AsyncClient) -> Tool:
    """A ``Tool`` whose handler calls ``config``'s endpoint with ``client``."""

    async def handle(call: ToolCall) -> Any:
        try:
            url = config.url.format_map(dict(call.args))
        except KeyError as exc:
            raise ToolRefused(f"url needs argument {exc.args[0]!r}") from None
        headers = {k: resolve_secrets(v) for k, v in config.headers.items()}
        headers["Idempotency-Key"] = call.idempotency_key
        method = config.method.upper()
        body = None if method in ("GET", "DELETE") else dict(call.args)
        try:
            response = await client.request(
                method, url, json=body, headers=headers, timeout=spec.timeout_ms / 1000
            )
        except httpx.TransportError as exc:  # timeouts included: it may have happened
            raise OutcomeUnknown(f"{spec.name}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise OutcomeUnknown(f"{spec.name}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ToolRefused(f"{spec.name}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            return response.text

    return Tool(spec, handle)
