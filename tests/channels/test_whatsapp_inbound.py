"""WhatsApp webhooks in: signature, handshake and envelope parsing (pure functions)."""

import pytest

from acf.adapters.channels.whatsapp.inbound import (
    parse_webhook,
    signature_ok,
    verify_challenge,
)
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from tests.channels.payloads import APP_SECRET, button_reply, envelope, signed, text, value


def test_the_signature_is_an_hmac_sha256_of_the_raw_body() -> None:
    raw, header = signed(envelope(value([text("wamid.1", "hi")])))
    assert signature_ok(raw, header, APP_SECRET)
    assert signature_ok(raw, header.upper().replace("SHA256=", "sha256="), APP_SECRET)
    assert not signature_ok(raw + b" ", header, APP_SECRET)  # the raw bytes, not the JSON
    assert not signature_ok(raw, header, "another-secret")
    assert not signature_ok(raw, None, APP_SECRET)
    assert not signature_ok(raw, header.removeprefix("sha256="), APP_SECRET)
    assert not signature_ok(raw, "sha1=" + header.removeprefix("sha256="), APP_SECRET)


@pytest.mark.parametrize(
    ("params", "challenge"),
    [
        (
            {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"},
            "1158201444",
        ),
        ({"hub.mode": "subscribe", "hub.verify_token": "bad", "hub.challenge": "1"}, None),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"}, None),
        ({"hub.verify_token": "tok", "hub.challenge": "1"}, None),
    ],
)
def test_the_verify_handshake(params: dict[str, str], challenge: str | None) -> None:
    assert verify_challenge(params, "tok") == challenge


def test_a_text_message_with_the_contact_name() -> None:
    batch = parse_webhook("acme", "support", envelope(value([text("wamid.A", "Another color?")])))
    [msg] = batch.messages
    assert msg.key.tenant == "acme" and msg.key.agent == "support"
    assert msg.key.customer == "16505551234" and msg.key.channel is Channel.WHATSAPP
    assert msg.provider_message_id == "wamid.A"
    assert msg.text == "Another color?"
    assert msg.provider_timestamp_ms == 1749416383000
    assert msg.sender_name == "Sheena Nelson"


def test_button_list_and_template_replies_carry_the_button_id() -> None:
    list_reply = button_reply("wamid.L", "x", "x")
    list_reply["interactive"] = {
        "type": "list_reply",
        "list_reply": {"id": "size-m", "title": "Medium", "description": "M"},
    }
    template = {
        "from": "16505551234",
        "id": "wamid.T",
        "timestamp": "1750025140",
        "type": "button",
        "button": {"payload": "stop-promos", "text": "Stop promotions"},
    }
    batch = parse_webhook(
        "acme",
        "support",
        envelope(value([button_reply("wamid.B", "cancel-button", "Cancel"), list_reply, template])),
    )
    buttons = [(m.button.button_id, m.button.title) for m in batch.messages if m.button]
    assert buttons == [
        ("cancel-button", "Cancel"),
        ("size-m", "Medium"),
        ("stop-promos", "Stop promotions"),
    ]


def test_media_is_kept_as_a_reference() -> None:
    image = {
        "from": "16505551234",
        "id": "wamid.I",
        "timestamp": "1749416390",
        "type": "image",
        "image": {"id": "1479537139650973", "mime_type": "image/jpeg", "caption": "broken"},
    }
    [msg] = parse_webhook("acme", "support", envelope(value([image]))).messages
    [media] = msg.media
    assert (media.ref, media.mime_type, media.caption) == (
        "1479537139650973",
        "image/jpeg",
        "broken",
    )


def test_a_batch_of_entries_is_ordered_by_provider_timestamp() -> None:
    body = envelope(
        value([text("wamid.3", "third", at=300), text("wamid.1", "first", at=100)]),
        value([text("wamid.2", "second", at=200)]),
    )
    batch = parse_webhook("acme", "support", body)
    assert [m.text for m in batch.messages] == ["first", "second", "third"]


def test_statuses_and_kinds_acf_does_not_take() -> None:
    reaction = {
        "from": "16505551234",
        "id": "wamid.R",
        "timestamp": "1",
        "type": "reaction",
        "reaction": {"message_id": "wamid.out", "emoji": "👍"},
    }
    statuses = [
        {"id": "wamid.out", "status": "read", "timestamp": "20", "recipient_id": "16505551234"},
        {
            "id": "wamid.out2",
            "status": "failed",
            "timestamp": "10",
            "recipient_id": "16505551234",
            "errors": [{"code": 131049, "title": "Not delivered to maintain ecosystem health"}],
        },
    ]
    batch = parse_webhook("acme", "support", envelope(value([reaction], statuses=statuses)))
    assert batch.messages == []
    assert batch.skipped == ["wamid.R: message type 'reaction' is not taken"]
    assert [(s.provider_message_id, s.status) for s in batch.statuses] == [
        ("wamid.out2", "failed"),
        ("wamid.out", "read"),
    ]
    assert batch.statuses[0].error == "131049: Not delivered to maintain ecosystem health"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([], "body: expected an object"),
        ({"object": "page", "entry": []}, "object: expected 'whatsapp_business_account'"),
        ({"object": "whatsapp_business_account"}, "entry: expected a list"),
        (
            envelope({"messages": [{"id": "w", "timestamp": "1", "type": "text"}]}),
            "entry[0].changes[0].value.messages[0].from: expected a non-empty string",
        ),
        (
            envelope(value([{**text("w", "x"), "timestamp": "soon"}])),
            "messages[0].timestamp: expected unix seconds",
        ),
        (
            envelope(value([{**text("w", "x"), "text": {}}])),
            "messages[0].text.body: expected a non-empty string",
        ),
        (
            envelope(value(statuses=[{"id": "w", "status": "lost", "timestamp": "1"}])),
            "statuses[0].status: expected one of sent, delivered, read, failed",
        ),
    ],
)
def test_malformed_bodies_name_the_field(body: object, complaint: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_webhook("acme", "support", body)
    assert complaint in str(refused.value)
