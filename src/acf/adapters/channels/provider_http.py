"""What the senders make of a provider's HTTP answer, alike for every provider: its JSON
body when it has one, and whether a refusal is definite. A 4xx other than 408 (timeout) and
429 (rate limited) is a definite refusal, not retried; anything else (5xx, 408, 429) is
transient and retried by the relay. A reply sent as several provider messages resumes
after the parts already accepted (``send_parts``)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from acf.ports.channel_sender import DeliveryError

Part = TypeVar("Part")

TRANSIENT_4XX = frozenset({408, 429})


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON body; None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


MAX_RETRY_AFTER_MS = 3_600_000
"""A provider asking for more than an hour is waited for an hour, then asked again."""


def retry_after_ms(response: httpx.Response, seconds: Any = None) -> int | None:
    """How long the provider asked to wait: ``seconds`` when its body says so (Telegram's
    ``parameters.retry_after``), else the ``Retry-After`` header in seconds; capped."""
    value = seconds if seconds is not None else response.headers.get("retry-after")
    try:
        wait = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date, or nothing usable: the relay's own backoff
    if wait is None or wait < 0:
        return None
    return min(wait * 1000, MAX_RETRY_AFTER_MS)


def definite(status: int) -> bool:
    """Whether a failed answer with ``status`` is a definite refusal."""
    return 400 <= status < 500 and status not in TRANSIENT_4XX


async def send_parts(
    parts: Sequence[Part], already_sent: int, post: Callable[[Part], Awaitable[str]]
) -> str:
    """Post the parts not accepted yet, in order; returns the first posted one's provider
    id. A failure carries how many parts this call got accepted
    (``DeliveryError.parts_accepted``): the relay records them, and the retry starts after
    them instead of sending them to the customer again."""
    ids: list[str] = []
    for part in parts[already_sent:]:
        try:
            ids.append(await post(part))
        except DeliveryError as exc:
            exc.parts_accepted = len(ids)
            raise
    return ids[0] if ids else ""
