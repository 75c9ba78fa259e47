"""WhatsApp replies out, against a fake Graph API on loopback."""

import dataclasses
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest

from acf.channels.whatsapp.outbound import (
    WhatsAppAccount,
    WhatsAppCloudSender,
    WindowTemplate,
    outside_window,
    template_body,
)
from acf.domain.capabilities import DEFAULT_CAPABILITIES
from acf.domain.channels import Channel
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage
from tests.channels.fake_graph import FakeGraph, fake_graph


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as server:
        yield server


def account(graph: FakeGraph) -> WhatsAppAccount:
    return WhatsAppAccount("106540352242922", "${WA_TOKEN}", graph.url, "v21.0")


def reply(text: str, buttons: Sequence[tuple[str, str]] = (), **extra: object) -> OutboundMessage:
    key = SessionKey("acme", "support", "16505551234", Channel.WHATSAPP)
    payload = {"text": text, "buttons": [{"id": i, "title": t} for i, t in buttons], **extra}
    return OutboundMessage(key, 7, payload, customer_last_message_at_ms=int(time.time() * 1000))


async def send(graph: FakeGraph, message: OutboundMessage) -> str:
    async with httpx.AsyncClient() as http:
        sender = WhatsAppCloudSender(http, {"acme": account(graph)})
        return (await sender.send(message)).provider_message_id


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_TOKEN", "EAAG-test-token")


async def test_a_text_reply_goes_to_the_number_with_the_bearer_token(graph: FakeGraph) -> None:
    wamid = await send(graph, reply("Order 1001 is shipped."))
    assert wamid == "wamid.out-1"
    [(path, headers, body)] = graph.received
    assert path == "/v21.0/106540352242922/messages"
    assert headers["Authorization"] == "Bearer EAAG-test-token"
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"preview_url": False, "body": "Order 1001 is shipped."},
    }


async def test_a_long_reply_is_split_at_sentences_within_4096_characters(
    graph: FakeGraph,
) -> None:
    text = " ".join(f"Line {i} of the long answer." for i in range(400))
    await send(graph, reply(text))
    parts = [body["text"]["body"] for body in graph.bodies()]
    assert len(parts) == 3
    assert all(len(p) <= 4096 and p.endswith(".") for p in parts)
    assert " ".join(parts) == text


async def test_up_to_three_short_buttons_are_reply_buttons(graph: FakeGraph) -> None:
    await send(graph, reply("Refund order 42?", [("yes", "Yes"), ("no", "No")]))
    [body] = graph.bodies()
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "Refund order 42?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
            ]
        },
    }


@pytest.mark.parametrize(
    "buttons",
    [
        [("a", "One"), ("b", "Two"), ("c", "Three"), ("d", "Four")],  # more than 3
        [("a", "A title longer than twenty")],  # title over 20 characters
        [("a", "Same"), ("b", "Same")],  # titles not unique
    ],
)
async def test_buttons_whatsapp_cannot_show_become_numbered_options(
    graph: FakeGraph, buttons: list[tuple[str, str]]
) -> None:
    await send(graph, reply("Pick one:", buttons))
    [body] = graph.bodies()
    assert body["type"] == "text"
    lines = body["text"]["body"].splitlines()
    assert lines[0] == "Pick one:"
    assert lines[2:] == [f"{n}. {title}" for n, (_i, title) in enumerate(buttons, 1)]


@pytest.mark.parametrize(
    ("status", "definite"), [(400, True), (401, True), (429, False), (500, False), (503, False)]
)
async def test_provider_errors_are_definite_or_retried(
    graph: FakeGraph, status: int, definite: bool
) -> None:
    graph.answers.append((status, {"error": {"code": 131047, "message": "Re-engagement"}}))
    with pytest.raises(DeliveryError) as failed:
        await send(graph, reply("hi"))
    assert failed.value.definite is definite
    assert str(status) in str(failed.value) and "131047" in str(failed.value)


async def test_media_and_a_missing_token_are_definite_refusals(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DeliveryError, match="media") as media:
        await send(graph, reply("see", media=["https://x/y.png"]))
    assert media.value.definite
    monkeypatch.delenv("WA_TOKEN")
    with pytest.raises(DeliveryError, match="WA_TOKEN") as token:
        await send(graph, reply("hi"))
    assert token.value.definite
    assert graph.received == []


async def test_an_unreachable_graph_api_is_retried() -> None:
    async with httpx.AsyncClient() as http:
        dead = WhatsAppAccount("1", "literal-token", "http://127.0.0.1:9", "v21.0")
        with pytest.raises(DeliveryError) as failed:
            await WhatsAppCloudSender(http, {"acme": dead}).send(reply("hi"))
    assert not failed.value.definite


def late(text: str) -> OutboundMessage:
    """A reply 25 hours after the customer's last message."""
    fresh = reply(text)
    last = int(time.time() * 1000) - 25 * 3600 * 1000
    return OutboundMessage(fresh.key, fresh.outbox_id, fresh.payload, last)


async def test_outside_the_24_hour_window_without_a_template_the_row_is_refused(
    graph: FakeGraph,
) -> None:
    with pytest.raises(DeliveryError) as refused:
        await send(graph, late("Your refund went through."))
    assert refused.value.definite
    assert "24-hour customer-service window" in str(refused.value)
    assert "whatsapp.window_template" in str(refused.value)
    assert graph.received == []
    with pytest.raises(DeliveryError):  # no message from the customer at all: no window
        await send(graph, OutboundMessage(reply("hi").key, 8, {"text": "hi"}))
    assert graph.received == []


async def test_outside_the_window_the_configured_template_carries_the_reply(
    graph: FakeGraph,
) -> None:
    template = WindowTemplate("reply_waiting", "en_US", text_parameter=True)
    acct = dataclasses.replace(account(graph), window_template=template)
    async with httpx.AsyncClient() as http:
        sender = WhatsAppCloudSender(http, {"acme": acct})
        await sender.send(late("Your refund\n\nwent   through.\tThanks!"))
    [(_path, _headers, body)] = graph.received
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "reply_waiting",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Your refund went through. Thanks!"}],
            }
        ],
    }


def test_the_window_is_24_hours_from_the_customers_last_message() -> None:
    hour = 3600 * 1000
    assert not outside_window(1_000, 1_000 + 24 * hour - 1)
    assert outside_window(1_000, 1_000 + 24 * hour)
    assert outside_window(None, 1_000)


def test_a_template_parameter_is_one_line_of_at_most_1024_characters() -> None:
    body = template_body("1", WindowTemplate("t", "en", True), "word " * 400)
    [parameter] = body["template"]["components"][0]["parameters"]
    assert len(parameter["text"]) == 1024 and parameter["text"].endswith("…")
    assert "components" not in template_body("1", WindowTemplate("t", "en"), "x")["template"]


async def test_typing_marks_the_last_message_read_with_the_indicator(graph: FakeGraph) -> None:
    async with httpx.AsyncClient() as http:
        sender = WhatsAppCloudSender(http, {"acme": account(graph)})
        await sender.show_typing(reply("x").key, "wamid.in-9")
    [(path, headers, body)] = graph.received
    assert path == "/v21.0/106540352242922/messages"
    assert headers["Authorization"] == "Bearer EAAG-test-token"
    assert body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.in-9",
        "typing_indicator": {"type": "text"},
    }


async def test_the_tenants_capabilities_shape_the_reply(graph: FakeGraph) -> None:
    plain = DEFAULT_CAPABILITIES[Channel.WHATSAPP].with_overrides(
        {"max_buttons": 0, "max_text_length": 40}
    )
    acct = dataclasses.replace(account(graph), capabilities=plain)
    async with httpx.AsyncClient() as http:
        sender = WhatsAppCloudSender(http, {"acme": acct})
        text = "Your refund of 20 euros is ready. Shall I send it now?"
        await sender.send(reply(text, [("yes", "Yes"), ("no", "No")]))
    bodies = [body["text"]["body"] for _p, _h, body in graph.received]
    assert bodies == ["Your refund of 20 euros is ready.", "Shall I send it now?\n\n1. Yes\n2. No"]
