"""WhatsApp webhooks in: signature, handshake and envelope parsing (pure functions)."""

from typing import Any

import pytest

from acf.channels.whatsapp.inbound import (
    WhatsAppBatch,
    WhatsAppNumber,
    parse_webhook,
    signature_ok,
    verify_challenge,
)
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from tests.channels.payloads import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    button_reply,
    envelope,
    signed,
    text,
    value,
)

NUMBER = WhatsAppNumber("acme", "support", PHONE_NUMBER_ID)
NOW_MS = 1_750_000_000_000


def parse(body: Any) -> WhatsAppBatch:
    return parse_webhook(NUMBER, body, NOW_MS)


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
    batch = parse(envelope(value([text("wamid.A", "Another color?")])))
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
    batch = parse(
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
    [msg] = parse(envelope(value([image]))).messages
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
    batch = parse(body)
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
    batch = parse(envelope(value([reaction], statuses=statuses)))
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
        ({"object": "page", "entry": []}, "object: input should be 'whatsapp_business_account'"),
        ({"object": "whatsapp_business_account"}, "entry: field required"),
        (
            {"object": "whatsapp_business_account", "entry": 5},
            "entry: input should be a valid list",
        ),
    ],
)
def test_a_body_that_is_not_the_envelope_is_refused_naming_the_field(
    body: object, complaint: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse(body)
    assert str(refused.value) == complaint


def _value(**fields: Any) -> dict[str, Any]:
    return {**value([text("w", "x")]), **fields}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**envelope(), "entry": [5]}, "entry[0]: expected an object"),
        (envelope(_value(messages=5)), "entry[0].changes[0].value.messages: input should be"),
        (envelope(_value(statuses="x")), "entry[0].changes[0].value.statuses: input should be"),
        (
            envelope({"messages": [text("w", "x")]}),
            "entry[0].changes[0]: 1 message(s) and 0 status(es) addressed to phone number id "
            "None, not the tenant's 106540352242922",
        ),
        (
            envelope({**value([text("w", "x")]), "metadata": {"phone_number_id": "1"}}),
            "addressed to phone number id '1'",
        ),
        (
            envelope(value([{"id": "w", "timestamp": "1", "type": "text"}])),
            "entry[0].changes[0].value.messages[0].from: field required",
        ),
        (envelope(value([text("w", "x", sender="abc")])), "messages[0].from: expected a wa_id"),
        (envelope(value([text("w", "x", sender="+16505551234")])), "from: expected a wa_id"),
        (envelope(value([text("w", "x", sender="1" * 16)])), "from: expected a wa_id"),
        (
            envelope(value([{**text("w", "x"), "timestamp": "soon"}])),
            "messages[0].timestamp: expected unix seconds",
        ),
        (envelope(value([{**text("w", "x"), "timestamp": "-5"}])), "expected unix seconds"),
        (envelope(value([{**text("w", "x"), "timestamp": 0}])), "0 is not a time"),
        (envelope(value([{**text("w", "x"), "timestamp": True}])), "timestamp"),
        (envelope(value([{**text("w", "x"), "timestamp": 1.5}])), "timestamp"),
        (
            envelope(value([text("w", "x", at=NOW_MS // 1000 + 2 * 86400)])),
            "messages[0].timestamp: 1750172800 is not a time a message can have",
        ),
        (
            envelope(value([{**text("w", "x"), "text": {}}])),
            "messages[0].text.body: field required",
        ),
        (envelope(value([text("w", "x" * 20_000)])), "messages[0]: text is 20000 characters"),
        (envelope(value([text("w", "a\x00b")])), "text.body: contains a NUL character"),
        (envelope(value([text("w" * 300, "x")])), "messages[0].id: string should have at most"),
        (
            envelope(value(statuses=[{"id": "w", "status": "lost", "timestamp": "1"}])),
            "statuses[0].status: input should be 'sent', 'delivered', 'read' or 'failed'",
        ),
    ],
)
def test_an_item_acf_cannot_take_is_skipped_with_its_reason(body: object, reason: str) -> None:
    batch = parse(body)
    assert (batch.messages, batch.statuses) == ([], [])
    [why] = [*batch.refused, *batch.skipped]
    assert reason in why, why


def test_malformed_optional_fields_are_dropped_and_the_message_taken() -> None:
    reply = button_reply("wamid.B", "cancel-button", "Cancel")
    reply["interactive"]["button_reply"]["title"] = ["Cancel"]
    image = {
        "from": "16505551234",
        "id": "wamid.I",
        "timestamp": "1749416390",
        "type": "image",
        "image": {"id": "147953", "mime_type": 5, "caption": {"x": 1}},
    }
    body = value([reply, image])
    body["contacts"] = [{"profile": "Sheena", "wa_id": "16505551234"}, 7]
    failed = {"id": "wamid.o", "status": "failed", "timestamp": "5", "errors": "boom"}
    body["statuses"] = [failed]
    batch = parse(envelope(body))
    assert batch.skipped == []
    media, button = batch.messages  # in provider-timestamp order
    assert button.button is not None and (button.button.button_id, button.button.title) == (
        "cancel-button",
        None,
    )
    assert button.sender_name is None
    assert (media.media[0].ref, media.media[0].mime_type, media.media[0].caption) == (
        "147953",
        None,
        None,
    )
    [status] = batch.statuses
    assert (status.provider_message_id, status.error) == ("wamid.o", None)
