"""What the senders make of a provider's HTTP answer, alike for every provider: its JSON
body when it has one, and whether a refusal is definite. A 4xx other than 408 (timeout) and
429 (rate limited) is a definite refusal, not retried; anything else (5xx, 408, 429) is
transient and retried by the relay."""

from typing import Any

import httpx

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
