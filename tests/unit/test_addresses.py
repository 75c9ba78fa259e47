"""Linked addresses are written as each channel's webhooks write them."""

import pytest

from acf.domain.addresses import normalised_address
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue


@pytest.mark.parametrize(
    ("channel", "given", "stored"),
    [
        (Channel.WHATSAPP, "+16505551234", "16505551234"),
        (Channel.WHATSAPP, "16505551234", "16505551234"),
        (Channel.SMS, "+16505551234", "+16505551234"),
        (Channel.EMAIL, "Ann@Example.COM", "ann@example.com"),
        (Channel.TELEGRAM, "-1001234567890", "-1001234567890"),
        (Channel.WEB, "web customer 7", "web customer 7"),
    ],
)
def test_addresses_are_normalised(channel: Channel, given: str, stored: str) -> None:
    assert normalised_address(channel, given) == stored


@pytest.mark.parametrize(
    ("channel", "given", "reason"),
    [
        (Channel.WHATSAPP, "call me", "not a WhatsApp id"),
        (Channel.WHATSAPP, "+1 650 555 1234", "not a WhatsApp id"),
        (Channel.SMS, "6505551234", "not an E.164 number"),  # no country code: not guessed
        (Channel.EMAIL, "ann.example.com", "not an email address"),
        (Channel.TELEGRAM, "9999999999999999999", "not a Telegram chat id"),
        (Channel.WEB, " padded ", "surrounding spaces"),
    ],
)
def test_what_cannot_be_an_address_is_refused(channel: Channel, given: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        normalised_address(channel, given)
