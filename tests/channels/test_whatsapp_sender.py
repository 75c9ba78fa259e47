"""WhatsApp replies out, against a fake Graph API on loopback."""

from collections.abc import Iterator, Sequence

import httpx
import pytest

from acf.adapters.channels.whatsapp.outbound import WhatsAppAccount, WhatsAppCloudSender
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
    return OutboundMessage(key, 7, payload)


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
