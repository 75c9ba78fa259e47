"""Telegram updates in: the secret-token header and Update parsing (pure functions)."""

from typing import Any

import pytest

from acf.channels.telegram.inbound import (
    TelegramUpdate,
    parse_update,
    provider_id,
    secret_token_ok,
    secret_token_valid,
)
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef
from tests.channels.telegram_updates import (
    CHAT_ID,
    SECRET_TOKEN,
    button_press,
    chat,
    message,
    text_update,
)

NOW_MS = 1_750_000_000_000


def parse(body: Any) -> TelegramUpdate:
    return parse_update("acme", "support", body, NOW_MS)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (SECRET_TOKEN, True),
        (SECRET_TOKEN + "x", False),
        (SECRET_TOKEN.upper(), False),
        ("", False),
        (None, False),
        ("tg-Secret_token-12é", False),  # not ASCII: refused, not an error
    ],
)
def test_the_secret_token_header_must_match_exactly(header: str | None, ok: bool) -> None:
    assert secret_token_ok(header, SECRET_TOKEN) is ok


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("abc", True),
        ("A-Za-z0-9_-", True),
        ("x" * 256, True),
        ("x" * 257, False),
        ("", False),
        ("with space", False),
        ("dots.not.allowed", False),
    ],
)
def test_the_secret_token_value_follows_telegrams_rule(value: str, valid: bool) -> None:
    assert secret_token_valid(value) is valid


def test_a_private_text_message() -> None:
    update = parse(text_update(10, "hi", at=1441645532))
    msg = update.message
    assert msg is not None and update.skipped is None and update.callback_query_id is None
    assert msg.key.tenant == "acme" and msg.key.agent == "support"
    assert msg.key.customer == "111" and msg.key.channel is Channel.TELEGRAM
    assert msg.provider_message_id == "tg-update-10" == provider_id(10)
    assert msg.text == "hi"
    assert msg.provider_timestamp_ms == 1441645532000
    assert msg.sender_name == "Ada Lovelace"


def test_a_large_chat_id_stays_an_exact_integer_string() -> None:
    big = -1001234567890123456  # needs more than 53 bits: a float would round it
    body = {"update_id": 1, "message": message(chat_id=big, text="hi")}
    msg = parse(body).message
    assert msg is not None and msg.key.customer == "-1001234567890123456"


def test_an_edit_is_a_new_message_timed_by_its_edit_date() -> None:
    original = parse(text_update(20, "order 1001"))
    edit = {
        "update_id": 21,
        "edited_message": message(20, text="order 1002", edit_date=1441645600),
    }
    corrected = parse(edit).message
    assert original.message is not None and corrected is not None
    assert corrected.text == "order 1002"
    assert corrected.provider_message_id == "tg-update-21"
    assert corrected.provider_message_id != original.message.provider_message_id
    assert corrected.provider_timestamp_ms == 1441645600000


@pytest.mark.parametrize(
    ("fields", "media"),
    [
        (
            {
                "photo": [
                    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
                    {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853},
                    {"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 213},
                ],
                "caption": "the damage",
            },
            MediaRef("large", None, "the damage"),
        ),
        (
            {"document": {"file_id": "doc1", "file_name": "a.pdf", "mime_type": "application/pdf"}},
            MediaRef("doc1", "application/pdf", None),
        ),
        (
            {"voice": {"file_id": "v1", "duration": 3, "mime_type": "audio/ogg"}},
            MediaRef("v1", "audio/ogg", None),
        ),
        ({"audio": {"file_id": "a1", "duration": 3}}, MediaRef("a1", None, None)),
        (
            {"video": {"file_id": "vid", "mime_type": "video/mp4"}, "caption": "look"},
            MediaRef("vid", "video/mp4", "look"),
        ),
    ],
)
def test_media_messages_carry_the_file_id(fields: dict[str, Any], media: MediaRef) -> None:
    msg = parse({"update_id": 5, "message": message(**fields)}).message
    assert msg is not None
    assert msg.media == (media,) and msg.text is None


def test_a_button_press_is_a_button_reply_with_the_buttons_title() -> None:
    update = parse(button_press(30, "refund-yes", "Yes, refund"))
    assert update.callback_query_id == "4382bfdwdsb323b2d9"
    msg = update.message
    assert msg is not None
    assert msg.button == ButtonReply("refund-yes", "Yes, refund")
    assert msg.key.customer == str(CHAT_ID) and msg.provider_message_id == "tg-update-30"
    assert msg.sender_name == "Ada Lovelace"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"update_id": 40, "message": {**message(text="hi"), "chat": chat(-100, "group")}},
            "update 40: a group chat is not taken (private chats only)",
        ),
        (
            {"update_id": 41, "message": message(sticker={"file_id": "s"})},
            "update 41: a message with none of text, photo, document, voice, audio, video "
            "is not taken",
        ),
        (
            {"update_id": 42, "channel_post": message(text="news")},
            "update 42: 'channel_post' is not taken",
        ),
        ({"update_id": 43}, "update 43: carries nothing"),
        ({"update_id": 44, "message": message(text="   ")}, "update 44: the text is blank"),
    ],
)
def test_updates_acf_does_not_take_are_skipped_with_a_reason(
    body: dict[str, Any], reason: str
) -> None:
    update = parse(body)
    assert update.message is None and update.skipped == reason


def test_presses_acf_does_not_take_are_skipped_but_still_answered() -> None:
    game = button_press(50, "x")
    del game["callback_query"]["data"]
    game["callback_query"]["game_short_name"] = "tetris"
    inline = button_press(51, "x")
    del inline["callback_query"]["message"]
    inline["callback_query"]["inline_message_id"] = "inl-1"
    group = button_press(52, "x")
    group["callback_query"]["message"]["chat"] = chat(-100, "supergroup")
    reasons = []
    for body in (game, inline, group):
        update = parse(body)
        assert update.message is None and update.callback_query_id == "4382bfdwdsb323b2d9"
        reasons.append(update.skipped)
    assert reasons == [
        "update 50: a callback query without data (a game) is not taken",
        "update 51: a button under an inline-mode message is not taken",
        "update 52: a supergroup chat is not taken (private chats only)",
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "body: expected an object"),
        ({}, "update_id: field required"),
        ({"update_id": "7"}, "update_id: input should be a valid integer"),
        ({"update_id": 7.0}, "update_id: input should be a valid integer"),
        ({"update_id": True}, "update_id: input should be a valid integer"),
        ({"update_id": -1}, "update_id: input should be greater than or equal to 0"),
        ({"update_id": 1, "message": "hi"}, "message: expected an object"),
        (
            {"update_id": 1, "message": {**message(text="hi"), "chat": {"id": 111.0}}},
            "message.chat.id: input should be a valid integer",
        ),
        (
            {"update_id": 1, "message": {**message(text="hi"), "chat": {"id": 2**63}}},
            "message.chat.id: input should be less than 9223372036854775808",
        ),
        (
            {"update_id": 1, "message": message(text="hi", date="1441645532")},
            "message.date: input should be a valid integer",
        ),
        (
            {"update_id": 1, "message": message(text=42)},
            "message.text: input should be a valid string",
        ),
        ({"update_id": 1, "message": message(text="x" * 20_000)}, "message: text is 20000"),
        (
            {"update_id": 1, "message": message(photo=[])},
            "message.photo: list should have at least 1 item",
        ),
        (
            {"update_id": 1, "message": message(photo=[{"width": 1}])},
            "message.photo[0].file_id: field required",
        ),
        (
            {"update_id": 1, "message": message(document={})},
            "message.document.file_id: field required",
        ),
        ({"update_id": 1, "callback_query": {"data": "x"}}, "callback_query.id: field required"),
        (
            {
                "update_id": 1,
                "callback_query": {**button_press(1, "x")["callback_query"], "data": 5},
            },
            "callback_query.data: input should be a valid string",
        ),
    ],
)
def test_malformed_updates_name_the_field(body: Any, error: str) -> None:
    with pytest.raises(InvalidValue) as failed:
        parse(body)
    assert str(failed.value).startswith(error), str(failed.value)
