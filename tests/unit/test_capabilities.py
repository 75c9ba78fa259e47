"""Channel capabilities as data: acf's defaults, tenants' overrides, checked values."""

import pytest

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue


def test_every_channel_has_defaults_from_the_provider_facts() -> None:
    assert set(DEFAULT_CAPABILITIES) == set(Channel)
    whatsapp = DEFAULT_CAPABILITIES[Channel.WHATSAPP]
    assert (whatsapp.max_text_length, whatsapp.max_buttons, whatsapp.max_button_title_length) == (
        4096,
        3,
        20,
    )
    assert whatsapp.typing_indicator and whatsapp.typing_lasts_ms == 25_000
    assert DEFAULT_CAPABILITIES[Channel.SMS].max_buttons == 0
    assert not DEFAULT_CAPABILITIES[Channel.EMAIL].typing_indicator


def test_overrides_change_only_what_they_name() -> None:
    plain = DEFAULT_CAPABILITIES[Channel.WHATSAPP].with_overrides({"max_buttons": 0})
    assert plain.max_buttons == 0 and plain.max_text_length == 4096


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": True}, "unknown fields ['colour']"),
        ({"max_text_length": 0}, "max_text_length must be at least 1"),
        ({"max_buttons": -1}, "must not be negative"),
        ({"typing_lasts_ms": 0}, "typing indicator needs typing_lasts_ms"),
        ({"max_button_title_length": 0}, "buttons need max_button_title_length"),
    ],
)
def test_bad_overrides_are_refused_with_the_reason(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidValue, match=message.replace("[", r"\[").replace("]", r"\]")):
        DEFAULT_CAPABILITIES[Channel.WHATSAPP].with_overrides(changes)


def test_a_channel_without_buttons_needs_no_title_length() -> None:
    assert ChannelCapabilities(160).max_buttons == 0
