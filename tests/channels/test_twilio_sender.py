"""Replies out through Twilio's Messages API, against a fake Twilio on loopback."""

import base64
from collections.abc import Iterator, Sequence
from dataclasses import replace

import httpx
import pytest

from acf.channels.twilio.outbound import TwilioAccount, TwilioSender
from acf.channels.twilio.segments import segment_count
from acf.channels.whatsapp.outbound import wall_ms
from acf.domain.capabilities import DEFAULT_CAPABILITIES
from acf.domain.channels import Channel
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage
from tests.channels.fake_twilio import FakeTwilio, fake_twilio, message_sid
from tests.channels.twilio_payloads import ACCOUNT_SID, CUSTOMER, OUR_NUMBER, OUR_WHATSAPP

CALLBACK = "https://acf.example.com/v1/channels/twilio/acme/status"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tw-secret")


def account(twilio: FakeTwilio, **changes: object) -> TwilioAccount:
    base = TwilioAccount(
        ACCOUNT_SID,
        "${TWILIO_AUTH_TOKEN}",
        from_number=OUR_NUMBER,
        whatsapp_from=OUR_WHATSAPP,
        status_callback=CALLBACK,
        api_base_url=twilio.url,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def reply(
    text: str,
    buttons: Sequence[tuple[str, str]] = (),
    channel: Channel = Channel.SMS,
    customer: str = CUSTOMER,
    **extra: object,
) -> OutboundMessage:
    key = SessionKey("acme", "support", customer, channel)
    payload = {"text": text, "buttons": [{"id": i, "title": t} for i, t in buttons], **extra}
    return OutboundMessage(key, 7, payload, customer_last_message_at_ms=wall_ms() - 60_000)


async def send(twilio: FakeTwilio, message: OutboundMessage, **changes: object) -> str:
    async with httpx.AsyncClient() as http:
        sender = TwilioSender(http, {"acme": account(twilio, **changes)})
        return (await sender.send(message)).provider_message_id


async def test_an_sms_reply_goes_to_the_messages_api_with_basic_auth(twilio: FakeTwilio) -> None:
    sid = await send(twilio, reply("Order 1001 is shipped."))
    assert sid == message_sid(1)
    [request] = twilio.requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:tw-secret".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == [
        ("To", CUSTOMER),
        ("From", OUR_NUMBER),
        ("StatusCallback", CALLBACK),
        ("Body", "Order 1001 is shipped."),
    ]


async def test_a_messaging_service_sends_when_there_is_no_number(twilio: FakeTwilio) -> None:
    service = "MG" + "f" * 32
    await send(twilio, reply("hi"), from_number=None, messaging_service_sid=service)
    await send(twilio, reply("hi"), messaging_service_sid=service)  # the number wins
    first, second = twilio.requests()
    assert first.field("MessagingServiceSid") == service
    assert "From" not in dict(first.form)
    assert second.field("From") == OUR_NUMBER and "MessagingServiceSid" not in dict(second.form)


async def test_without_a_public_url_no_status_callback_is_asked(twilio: FakeTwilio) -> None:
    await send(twilio, reply("hi"), status_callback=None)
    [request] = twilio.requests()
    assert [name for name, _ in request.form] == ["To", "From", "Body"]


async def test_whatsapp_through_twilio_uses_the_whatsapp_addresses(twilio: FakeTwilio) -> None:
    await send(twilio, reply("hola", channel=Channel.WHATSAPP, customer="14158675310"))
    [request] = twilio.requests()
    assert request.field("To") == "whatsapp:+14158675310"
    assert request.field("From") == f"whatsapp:{OUR_WHATSAPP}"


async def test_whatsapp_through_twilio_outside_the_24_hours_is_refused_with_the_reason(
    twilio: FakeTwilio,
) -> None:
    fresh = reply("hola", channel=Channel.WHATSAPP, customer="14158675310")
    late = replace(fresh, customer_last_message_at_ms=wall_ms() - 25 * 3600 * 1000)
    with pytest.raises(DeliveryError, match="24-hour customer-service window") as refused:
        await send(twilio, late)
    assert refused.value.definite and twilio.requests() == []
    await send(twilio, replace(reply("hi"), customer_last_message_at_ms=None))  # SMS: no window
    assert len(twilio.requests()) == 1


async def test_a_long_reply_goes_in_parts_within_max_segments(twilio: FakeTwilio) -> None:
    text = " ".join(f"Line {i} of the long answer." for i in range(40))
    sid = await send(twilio, reply(text), max_segments=2)
    bodies = [r.field("Body") for r in twilio.requests()]
    assert len(bodies) == 4
    assert all(segment_count(b) <= 2 and b.endswith(".") for b in bodies)
    assert " ".join(bodies) == text
    assert sid == message_sid(1)  # the first part's sid stands for the row


async def test_buttons_become_numbered_options(twilio: FakeTwilio) -> None:
    await send(twilio, reply("Refund order 42?", [("yes", "Yes"), ("no", "No")]))
    [request] = twilio.requests()
    assert request.field("Body") == "Refund order 42?\n\n1. Yes\n2. No"


async def test_media_urls_ride_on_the_first_part(twilio: FakeTwilio) -> None:
    urls = ["https://cdn.example/a.png", "https://cdn.example/b.png"]
    await send(twilio, reply("Your receipt.", media=urls))
    [request] = twilio.requests()
    assert [v for k, v in request.form if k == "MediaUrl"] == urls
    await send(twilio, reply("", media=urls[:1]))
    assert twilio.requests()[1].field("Body") == ""


@pytest.mark.parametrize(
    ("status", "definite"),
    [(400, True), (401, True), (404, True), (408, False), (429, False), (500, False), (503, False)],
)
async def test_provider_errors_are_definite_or_retried(
    twilio: FakeTwilio, status: int, definite: bool
) -> None:
    error = {"code": 21211, "message": "The 'To' number is not a valid phone number."}
    twilio.answers.append((status, {**error, "status": status}))
    with pytest.raises(DeliveryError) as failed:
        await send(twilio, reply("hi"))
    assert failed.value.definite is definite
    assert f"Twilio answered {status}: 21211 The 'To' number" in str(failed.value)


async def test_an_acceptance_without_a_sid_is_retried(twilio: FakeTwilio) -> None:
    twilio.answers.append((201, {"status": "queued"}))
    with pytest.raises(DeliveryError, match="without a message sid") as failed:
        await send(twilio, reply("hi"))
    assert not failed.value.definite


async def test_an_unreachable_twilio_is_retried() -> None:
    async with httpx.AsyncClient() as http:
        dead = TwilioAccount(ACCOUNT_SID, "literal", OUR_NUMBER, api_base_url="http://127.0.0.1:9")
        with pytest.raises(DeliveryError, match="Twilio unreachable") as failed:
            await TwilioSender(http, {"acme": dead}).send(reply("hi"))
    assert not failed.value.definite


@pytest.mark.parametrize(
    ("message", "changes", "error"),
    [
        (reply("hi", channel=Channel.WHATSAPP), {"whatsapp_from": None}, "no twilio.whatsapp_from"),
        (reply("hi", channel=Channel.TELEGRAM), {}, "does not send on channel telegram"),
        (reply("   "), {}, "no text to send"),
        (reply("see", media=[f"https://x/{n}" for n in range(11)]), {}, "at most 10 media"),
    ],
)
async def test_what_can_never_be_sent_is_a_definite_refusal(
    twilio: FakeTwilio, message: OutboundMessage, changes: dict[str, object], error: str
) -> None:
    with pytest.raises(DeliveryError, match=error) as failed:
        await send(twilio, message, **changes)
    assert failed.value.definite
    assert twilio.requests() == []


async def test_a_missing_token_or_account_is_a_definite_refusal(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with pytest.raises(DeliveryError, match="TWILIO_AUTH_TOKEN") as token:
        await send(twilio, reply("hi"))
    assert token.value.definite
    other = reply("hi")
    other = OutboundMessage(replace(other.key, tenant="globex"), 1, other.payload)
    async with httpx.AsyncClient() as http:
        sender = TwilioSender(http, {"acme": account(twilio)})
        with pytest.raises(DeliveryError, match="globex has no Twilio account") as unknown:
            await sender.send(other)
    assert unknown.value.definite
    assert twilio.requests() == []


async def test_it_reaches_sms_and_whatsapp_only_where_configured(twilio: FakeTwilio) -> None:
    async with httpx.AsyncClient() as http:
        sender = TwilioSender(
            http, {"acme": account(twilio), "globex": account(twilio, whatsapp_from=None)}
        )
        assert sender.reachable("acme") == {Channel.SMS, Channel.WHATSAPP}
        assert sender.reachable("globex") == {Channel.SMS}
        assert sender.reachable("initech") == frozenset()


async def test_a_retry_resumes_after_the_parts_already_accepted(twilio: FakeTwilio) -> None:
    text = " ".join(f"Line {i} of the long answer." for i in range(40))
    twilio.answers.extend([(201, {"sid": message_sid(1)}), (503, {"code": 20500})])
    with pytest.raises(DeliveryError) as outage:
        await send(twilio, reply(text), max_segments=2)
    assert not outage.value.definite and outage.value.parts_accepted == 1
    first, failed = (r.field("Body") for r in twilio.requests())
    retry = replace(reply(text), parts_sent=1)  # what the relay recorded
    await send(twilio, retry, max_segments=2)
    rest = [r.field("Body") for r in twilio.requests()[2:]]
    assert rest[0] == failed and len(rest) == 3  # part 1 is not sent again
    assert " ".join([first, *rest]) == text


async def test_the_tenants_text_length_caps_each_message(twilio: FakeTwilio) -> None:
    short = DEFAULT_CAPABILITIES[Channel.SMS].with_overrides({"max_text_length": 60})
    text = " ".join(f"Line {i} of the long answer." for i in range(8))
    await send(twilio, reply(text), capabilities=short)
    bodies = [r.field("Body") for r in twilio.requests()]
    assert len(bodies) > 1 and all(len(b) <= 60 for b in bodies)
    assert " ".join(bodies) == text
