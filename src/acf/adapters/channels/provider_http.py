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
