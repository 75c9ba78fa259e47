"""The customer-service window is counted from the customer's last message *on the channel
and address a reply goes to*: a recent SMS does not open WhatsApp's 24 hours."""

from acf.domain.channels import Channel
from acf.domain.fallback import Route
from acf.domain.messages import InboundMessage
from acf.domain.session_key import SessionKey
from acf.service.relay import last_wrote_at

WA = Route(Channel.WHATSAPP, "15550001")


def newest(channel: Channel, address: str, provider_ms: int | None) -> InboundMessage:
    key = SessionKey("t1", "support", address, channel)
    return InboundMessage(
        "m1", "s1", key, 3, "p1", 5_000, text="hi", provider_timestamp_ms=provider_ms
    )


def test_the_newest_message_from_that_address_on_that_channel_counts() -> None:
    assert last_wrote_at(newest(Channel.WHATSAPP, "15550001", 4_000), WA) == 4_000
    assert last_wrote_at(newest(Channel.WHATSAPP, "15550001", None), WA) == 5_000


def test_a_message_elsewhere_does_not_open_the_window() -> None:
    assert last_wrote_at(newest(Channel.SMS, "+15550001", 4_000), WA) is None
    assert last_wrote_at(newest(Channel.WHATSAPP, "15550002", 4_000), WA) is None
    assert last_wrote_at(None, WA) is None
