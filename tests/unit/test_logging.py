"""acf's logging never prints the URLs of provider calls (a Telegram bot token is in one)."""

import logging

import httpx
import pytest

from acf.logging import configure_logging


async def test_provider_request_urls_stay_out_of_the_log_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("INFO")
    caplog.set_level(logging.INFO)  # the root at INFO, as `acf serve --log-level INFO`
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    configure_logging("INFO")  # what acf serve does: httpx stays at WARNING
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post("https://api.telegram.org/bot123456:SECRET/sendMessage", json={})
    assert "SECRET" not in caplog.text
