"""How ``acf config`` talks to a running acf: its ``/v1/config`` API over HTTP with an admin
key, and what the command prints and exits with when acf refuses or cannot be reached.

Exit codes: 2 for bad input (an invalid configuration, an unknown version, a missing key
option), 1 when acf refuses (401, 403, 409) or cannot be reached.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0
BAD_INPUT = frozenset({400, 404, 413, 422})

Url = Annotated[
    str,
    typer.Option("--url", envvar="ACF_URL", help="The running acf's address."),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="ACF_API_KEY",
        help="An admin API key (`acf keys create --tenant T --scope admin`).",
        show_default=False,
    ),
]


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_version(text: str) -> int:
    """``3``, ``v3`` or ``V3`` → 3; exit 2 otherwise."""
    digits = text.strip()
    digits = digits[1:] if digits[:1] in ("v", "V") else digits
    if not digits.isdigit() or int(digits) < 1:
        fail(f"{text!r} is not a version: expected a number such as 3 or v3", 2)
    return int(digits)


@dataclass(frozen=True, slots=True)
class Remote:
    url: str
    key: str

    @classmethod
    def of(cls, url: str, key: str | None) -> "Remote":
        if not key:
            fail("an admin API key is needed: pass --key or set ACF_API_KEY", 2)
        return cls(url.rstrip("/"), key)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON answer of a 2xx; otherwise print acf's message and exit."""
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_S) as client:
                response = client.request(method, path, json=body, params=query)
        except httpx.HTTPError as exc:
            fail(f"cannot reach acf at {self.url}: {exc}", 1)
        if response.is_success:
            return response.json()
        fail(describe(response), 2 if response.status_code in BAD_INPUT else 1)


def describe(response: httpx.Response) -> str:
    """acf's error body as one message, each problem on its own line."""
    try:
        body = response.json()
    except ValueError:
        return f"acf answered HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"acf answered HTTP {response.status_code}"
    message = str(body.get("message") or f"acf answered HTTP {response.status_code}")
    problems = body.get("problems") or []
    lines = [
        f"  {p.get('field') or '(body)'}: {p.get('message')}"
        for p in problems
        if isinstance(p, dict) and str(p.get("message")) not in message
    ]
    return "\n".join([f"{message} (HTTP {response.status_code})", *lines])
