"""A number answering buttons shown as numbered options is read as that button."""

from acf.domain.capabilities import DEFAULT_CAPABILITIES
from acf.domain.channels import Channel
from acf.domain.messages import ButtonReply, InboundMessage
from acf.domain.numbered_answers import with_numbered_answers
from acf.domain.session_key import SessionKey

ASKED = {
    "text": "Refund €20?",
    "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
}


def message(text: str, channel: Channel, seq: int = 1) -> InboundMessage:
    key = SessionKey("acme", "support", "+14155550100", channel)
    return InboundMessage(f"m{seq}", "s1", key, seq, f"p{seq}", 1_000, text=text)


def mapped(
    messages: list[InboundMessage], last_reply: dict | None, shown_on: Channel = Channel.SMS
) -> list[ButtonReply | None]:
    out = with_numbered_answers(messages, last_reply, DEFAULT_CAPABILITIES[shown_on])
    assert [m.text for m in out] == [m.text for m in messages]  # the text is kept
    return [m.button for m in out]


def test_on_sms_the_number_is_the_button() -> None:
    assert mapped([message("1", Channel.SMS)], ASKED) == [ButtonReply("yes", "Yes")]
    assert mapped([message("2.", Channel.SMS)], ASKED) == [ButtonReply("no", "No")]


def test_where_the_buttons_were_shown_a_number_is_just_text() -> None:
    assert mapped([message("1", Channel.WHATSAPP)], ASKED, Channel.WHATSAPP) == [None]


def test_the_channel_the_reply_went_out_on_decides_not_the_answers() -> None:
    # Asked by SMS (numbered), answered on WhatsApp: the number still answers it.
    assert mapped([message("2", Channel.WHATSAPP)], ASKED, Channel.SMS) == [ButtonReply("no", "No")]


def test_out_of_range_other_text_or_no_buttons_change_nothing() -> None:
    assert mapped([message("3", Channel.SMS), message("yes", Channel.SMS, 2)], ASKED) == [
        None,
        None,
    ]
    assert mapped([message("1", Channel.SMS)], {"text": "Anything else?"}) == [None]
    assert mapped([message("1", Channel.SMS)], None) == [None]
