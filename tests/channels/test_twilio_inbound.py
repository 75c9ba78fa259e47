"""Twilio webhook forms parsed into messages and statuses (pure)."""

import pytest

from acf.channels.twilio.inbound import parse_form, parse_message, parse_status
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef
from acf.domain.signals import DeliveryStatus
from tests.channels.twilio_payloads import CUSTOMER, sid, sms, status, whatsapp


def items(form: dict[str, str]) -> list[tuple[str, str]]:
    return list(form.items())


def test_a_form_body_keeps_every_field_as_sent() -> None:
    raw = b"Body=Hi+there%21+%E2%82%AC&NumMedia=0&Blank=&From=%2B14158675310"
    assert parse_form(raw) == [
        ("Body", "Hi there! €"),
        ("NumMedia", "0"),
        ("Blank", ""),
        ("From", "+14158675310"),
    ]
    assert parse_form(b"") == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not a form}", "not form-encoded"),
        (b"Body=%ff", "not form-encoded UTF-8"),
        ("Body=café".encode(), "not form-encoded UTF-8"),  # raw non-ASCII bytes
        (b"&".join(b"f%d=1" % n for n in range(1001)), "not form-encoded"),  # too many
    ],
)
def test_a_body_that_is_not_a_form_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse_form(raw)


def test_an_sms_is_a_message_from_the_e164_number() -> None:
    message = parse_message("acme", "support", items(sms(sid(1), "Where is order 1001?")))
    assert message.key.channel is Channel.SMS
    assert (message.key.tenant, message.key.agent) == ("acme", "support")
    assert message.key.customer == CUSTOMER
    assert message.provider_message_id == sid(1)
    assert message.text == "Where is order 1001?"
    assert (message.media, message.button, message.sender_name) == ((), None, None)


def test_whatsapp_through_twilio_is_the_whatsapp_channel_keyed_like_meta() -> None:
    message = parse_message("acme", "support", items(whatsapp(sid(2), "hola")))
    assert message.key.channel is Channel.WHATSAPP
    assert message.key.customer == "14158675310"  # Meta's wa_id form: digits, no +
    assert message.sender_name == "Sheena Nelson"
    without_wa_id = {k: v for k, v in whatsapp(sid(3), "hola").items() if k != "WaId"}
    assert parse_message("acme", "support", items(without_wa_id)).key.customer == "14158675310"


def test_media_are_references_to_twilio_urls() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    form = sms(
        sid(4, "MM"),
        "",
        NumMedia="2",
        MediaUrl0=url,
        MediaContentType0="image/jpeg",
        MediaUrl1=url + "2",
    )
    message = parse_message("acme", "support", items(form))
    assert message.text is None
    assert message.media == (MediaRef(url, "image/jpeg"), MediaRef(url + "2", None))


def test_a_quick_reply_button_is_a_button_reply() -> None:
    form = whatsapp(sid(5), "Yes", ButtonPayload="confirm-yes", ButtonText="Yes")
    message = parse_message("acme", "support", items(form))
    assert message.button == ButtonReply("confirm-yes", "Yes")
    assert message.text == "Yes"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MessageSid": None}, "MessageSid: missing or empty"),
        ({"MessageSid": "SM123"}, "MessageSid: expected a Twilio SID"),
        ({"From": None}, "From: missing or empty"),
        ({"From": "14158675310"}, "From: expected an E.164 number"),
        ({"From": "whatsapp:14158675310"}, "From: expected whatsapp: and an E.164 number"),
        ({"AccountSid": None}, "AccountSid: missing or empty"),
        ({"AccountSid": "AC123"}, "AccountSid: expected an account SID"),
        ({"To": None}, "To: missing or empty"),
        ({"To": "our number"}, "To: expected an E.164 number"),
        ({"Body": "x" * 1601}, "Body: 1601 characters; Twilio sends at most 1600"),
        ({"Body": "  "}, "Body: empty, and the message has no media"),
        ({"NumMedia": "two"}, "NumMedia: expected 0 to 10"),
        ({"NumMedia": "11"}, "NumMedia: expected 0 to 10"),
        ({"NumMedia": "1"}, "MediaUrl0: missing or empty"),
    ],
)
def test_a_missing_or_invalid_field_is_named(change: dict[str, str | None], message: str) -> None:
    form = {**sms(sid(6), "hello"), **change}
    pairs = [(k, v) for k, v in form.items() if v is not None]
    with pytest.raises(InvalidValue, match=message):
        parse_message("acme", "support", pairs)


def test_a_malformed_optional_field_is_left_out_and_the_message_kept() -> None:
    bad_wa_id = whatsapp(sid(13), "hola", WaId="+1415")
    assert parse_message("acme", "support", items(bad_wa_id)).key.customer == "14158675310"
    long_button = whatsapp(sid(14), "Yes", ButtonPayload="x" * 257, ButtonText="y" * 257)
    message = parse_message("acme", "support", items(long_button))
    assert (message.button, message.text) == (None, "Yes")


def test_a_field_sent_twice_is_refused() -> None:
    pairs = [*items(sms(sid(7), "hello")), ("Body", "again")]
    with pytest.raises(InvalidValue, match="Body: sent 2 times; expected once"):
        parse_message("acme", "support", pairs)


def test_exactly_1600_characters_are_taken() -> None:
    message = parse_message("acme", "support", items(sms(sid(8), "x" * 1600)))
    assert message.text is not None and len(message.text) == 1600


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("failed", DeliveryStatus.FAILED),
        ("undelivered", DeliveryStatus.FAILED),
    ],
)
def test_statuses_that_move_a_reply(name: str, expected: DeliveryStatus) -> None:
    signal = parse_status("acme", items(status(sid(9), name)), arrived_at_ms=1234)
    assert signal is not None
    assert (signal.tenant, signal.provider_message_id) == ("acme", sid(9))
    assert (signal.status, signal.at_ms, signal.error) == (expected, 1234, None)


@pytest.mark.parametrize(
    "name", ["accepted", "scheduled", "queued", "sending", "receiving", "received", "canceled"]
)
def test_steps_before_sent_change_nothing(name: str) -> None:
    assert parse_status("acme", items(status(sid(10), name)), 1) is None


def test_a_failure_carries_twilio_s_error_code() -> None:
    form = status(sid(11), "undelivered", ErrorCode="30003")
    signal = parse_status("acme", items(form), 1)
    assert signal is not None and signal.error == "30003"
    form = status(sid(11), "failed", ErrorCode="63016", ErrorMessage="Outside the window")
    signal = parse_status("acme", items(form), 1)
    assert signal is not None and signal.error == "63016 Outside the window"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MessageStatus": None}, "MessageStatus: missing or empty"),
        ({"MessageStatus": "teleported"}, "MessageStatus: 'teleported' is not one of"),
        ({"MessageSid": "nope"}, "MessageSid: expected a Twilio SID"),
    ],
)
def test_a_malformed_status_is_named(change: dict[str, str | None], message: str) -> None:
    form = {**status(sid(12), "delivered"), **change}
    pairs = [(k, v) for k, v in form.items() if v is not None]
    with pytest.raises(InvalidValue, match=message):
        parse_status("acme", pairs, 1)
