"""The web channel's delivery URL, against a real integration server on loopback that
records each POST and answers what the test tells it to."""

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from acf.adapters.channels.webhook import WebhookChannelSender
from acf.domain.channels import Channel
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage


class Integration:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.answer: tuple[int, bytes] = (200, b'{"id": "int-1"}')
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append((self.path, dict(self.headers.items()), json.loads(raw)))
                status, body = owner.answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/deliver"


@pytest.fixture
def integration() -> Iterator[Integration]:
    server = Integration()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def message(tenant: str = "t1") -> OutboundMessage:
    key = SessionKey(tenant, "support", "web:ann", Channel.WEB)
    return OutboundMessage(key, 42, {"text": "Order 1001 is shipped."})


async def test_a_reply_is_posted_with_its_outbox_id_and_the_sending_instance(
    integration: Integration,
) -> None:
    async with httpx.AsyncClient() as http:
        receipt = await WebhookChannelSender(http, {"t1": integration.url}).send(message())
    assert receipt.provider_message_id == "int-1"
    [(path, headers, body)] = integration.received
    assert path == "/deliver"
    assert body == {
        "tenant": "t1",
        "agent": "support",
        "customer": "web:ann",
        "outbox_id": 42,
        "payload": {"text": "Order 1001 is shipped."},
    }
    assert headers["X-Acf-Instance"].endswith(f"/{os.getpid()}")


async def test_an_answer_without_an_id_gets_one_from_the_outbox_row(
    integration: Integration,
) -> None:
    integration.answer = (202, b"accepted")
    async with httpx.AsyncClient() as http:
        receipt = await WebhookChannelSender(http, {"t1": integration.url}).send(message())
    assert receipt.provider_message_id == "webhook-42"


@pytest.mark.parametrize(
    ("status", "definite"), [(400, True), (404, True), (408, False), (429, False), (503, False)]
)
async def test_refusals_are_definite_and_the_rest_retried(
    integration: Integration, status: int, definite: bool
) -> None:
    integration.answer = (status, b"{}")
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as failed:
            await WebhookChannelSender(http, {"t1": integration.url}).send(message())
    assert failed.value.definite is definite
    assert str(status) in str(failed.value)


async def test_an_unreachable_url_is_transient() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/deliver"
    server.server_close()  # nothing listens there any more
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as failed:
            await WebhookChannelSender(http, {"t1": url}).send(message())
    assert failed.value.definite is False


async def test_a_tenant_without_a_delivery_url_keeps_the_web_page_delivery(
    integration: Integration,
) -> None:
    async with httpx.AsyncClient() as http:
        receipt = await WebhookChannelSender(http, {"t1": integration.url}).send(message("t2"))
    assert receipt.provider_message_id
    assert integration.received == []
