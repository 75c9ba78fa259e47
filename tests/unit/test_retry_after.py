"""How long a provider asked to wait, from its ``Retry-After`` header or its body."""

import httpx
import pytest

from acf.adapters.channels.provider_http import MAX_RETRY_AFTER_MS, retry_after_ms


@pytest.mark.parametrize(
    ("header", "seconds", "expected"),
    [
        ("30", None, 30_000),
        (None, 7, 7_000),  # Telegram's parameters.retry_after wins over the header
        ("30", 7, 7_000),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None, None),  # a date: the relay's own backoff
        ("-5", None, None),
        (None, None, None),
        ("999999", None, MAX_RETRY_AFTER_MS),
    ],
)
def test_retry_after(header: str | None, seconds: int | None, expected: int | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after_ms(httpx.Response(429, headers=headers), seconds) == expected
