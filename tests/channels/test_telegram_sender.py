"""Telegram replies out, against a fake Bot API on loopback (real HTTP)."""

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from acf.channels.telegram.outbound import TelegramAccount, TelegramSender, message_bodies
from acf.domain.capabilities import DEFAULT_CAPABILITIES
from acf.domain.channels import Channel
from acf.domain.session_key import SessionKey
from acf.ports.channel_reach import ChannelReach
from acf.ports.channel_sender import ChannelSender, DeliveryError, OutboundMessage, TypingSender
from tests.channels.fake_telegram import FakeTelegram, failure, fake_telegram

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
KEY = SessionKey("acme", "support", "111", Channel.TELEGRAM)


@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    with fake_telegram() as server:
        yield server


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_BOT_TOKEN", TOKEN)


def reply(
    text: str, buttons: Sequence[tuple[str, str]] = (), key: SessionKey = KEY, **extra: object
) -> OutboundMessage:
    payload = {"text": text, "buttons": [{"id": i, "title": t} for i, t in buttons], **extra}
    return OutboundMessage(key, 7, payload)


def sender(http: httpx.AsyncClient, url: str) -> TelegramSender:
    return TelegramSender(http, {"acme": TelegramAccount("${TG_BOT_TOKEN}", url)})


async def send(bot_api: FakeTelegram, message: OutboundMessage) -> str:
    async with httpx.AsyncClient() as http:
        return (await sender(http, bot_api.url).send(message)).provider_message_id


async def test_it_is_a_channel_sender_and_a_typing_sender_reaching_its_tenants() -> None:
    async with httpx.AsyncClient() as http:
        telegram = sender(http, "http://127.0.0.1:9")
    assert isinstance(telegram, ChannelSender) and isinstance(telegram, TypingSender)
    assert isinstance(telegram, ChannelReach)
    assert telegram.reachable("acme") == {Channel.TELEGRAM}
    assert telegram.reachable("globex") == frozenset()


async def test_a_text_reply_goes_to_the_chat_with_the_token_in_the_path(
    bot_api: FakeTelegram,
) -> None:
    receipt = await send(bot_api, reply("Order 1001 is shipped."))
    assert receipt == "111:1"
    [call] = bot_api.calls
    assert (call.method, call.token) == ("sendMessage", TOKEN)
    assert call.body == {"chat_id": 111, "text": "Order 1001 is shipped."}


async def test_a_long_reply_is_split_at_sentences_within_4096_characters(
    bot_api: FakeTelegram,
) -> None:
    text = " ".join(f"Line {i} of the long answer." for i in range(400))
    receipt = await send(bot_api, reply(text))
    parts = [body["text"] for body in bot_api.of("sendMessage")]
    assert len(parts) == 3
    assert all(len(p) <= 4096 and p.endswith(".") for p in parts)
    assert " ".join(parts) == text
    assert receipt == "111:1"  # the first part's id


async def test_buttons_are_an_inline_keyboard_under_the_last_part(bot_api: FakeTelegram) -> None:
    text = " ".join(f"Sentence {i} of the question." for i in range(200)) + " Refund?"
    await send(bot_api, reply(text, [("yes", "Yes"), ("no", "No"), ("é" * 32, "Maybe")]))
    bodies = bot_api.of("sendMessage")
    assert len(bodies) == 2 and "reply_markup" not in bodies[0]
    assert bodies[1]["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}],
            [{"text": "No", "callback_data": "no"}],
            [{"text": "Maybe", "callback_data": "é" * 32}],  # 64 bytes: the limit
        ]
    }


@pytest.mark.parametrize(
    "buttons",
    [
        [("yes", "Yes"), ("x" * 65, "Too long")],  # callback_data over 64 bytes
        [("yes", "Yes"), ("é" * 33, "Accented")],  # 33 characters, 66 bytes
        [("yes", "Yes"), ("", "Empty id")],
    ],
)
async def test_buttons_telegram_cannot_carry_all_become_numbered_options(
    bot_api: FakeTelegram, buttons: list[tuple[str, str]]
) -> None:
    await send(bot_api, reply("Pick one:", buttons))
    [body] = bot_api.of("sendMessage")
    assert "reply_markup" not in body
    lines = body["text"].splitlines()
    assert lines[0] == "Pick one:"
    assert lines[2:] == [f"{n}. {title}" for n, (_i, title) in enumerate(buttons, 1)]


@pytest.mark.parametrize(
    ("status", "answer", "definite"),
    [
        (400, failure(400, "Bad Request: chat not found"), True),
        (403, failure(403, "Forbidden: bot was blocked by the user"), True),
        (401, failure(401, "Unauthorized"), True),
        (429, failure(429, "Too Many Requests: retry after 35", retry_after=35), False),
        (500, failure(500, "Internal Server Error"), False),
        (502, b"<html>Bad Gateway</html>", False),  # a proxy's page, not JSON
    ],
)
async def test_provider_errors_are_definite_or_retried(
    bot_api: FakeTelegram, status: int, answer: Any, definite: bool
) -> None:
    bot_api.fail_next("sendMessage", status, answer)
    with pytest.raises(DeliveryError) as failed:
        await send(bot_api, reply("hi"))
    assert failed.value.definite is definite
    assert f"answered {status}" in str(failed.value)
    if isinstance(answer, dict):
        assert answer["description"] in str(failed.value)
    if status == 429:
        assert "retry after 35 s" in str(failed.value)
        assert failed.value.retry_after_ms == 35_000  # the relay waits at least that long
    else:
        assert failed.value.retry_after_ms is None
    assert TOKEN not in str(failed.value)


async def test_an_ok_answer_without_a_message_id_is_retried(bot_api: FakeTelegram) -> None:
    bot_api.fail_next("sendMessage", 200, {"ok": True, "result": True})
    with pytest.raises(DeliveryError, match="without a message_id") as failed:
        await send(bot_api, reply("hi"))
    assert not failed.value.definite


async def test_media_a_bad_chat_id_and_a_missing_token_are_definite_refusals(
    bot_api: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DeliveryError, match="media") as media:
        await send(bot_api, reply("see", media=["https://x/y.png"]))
    assert media.value.definite
    not_a_chat = SessionKey("acme", "support", "@someone", Channel.TELEGRAM)
    with pytest.raises(DeliveryError, match="not a Telegram chat id") as chat:
        await send(bot_api, reply("hi", key=not_a_chat))
    assert chat.value.definite
    other_tenant = SessionKey("globex", "support", "111", Channel.TELEGRAM)
    with pytest.raises(DeliveryError, match="no Telegram bot") as tenant:
        await send(bot_api, reply("hi", key=other_tenant))
    assert tenant.value.definite
    monkeypatch.delenv("TG_BOT_TOKEN")
    with pytest.raises(DeliveryError, match="TG_BOT_TOKEN") as token:
        await send(bot_api, reply("hi"))
    assert token.value.definite
    assert bot_api.calls == []


async def test_a_refused_connection_is_retried_and_never_shows_the_token() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as failed:
            await sender(http, "http://127.0.0.1:9").send(reply("hi"))
    assert not failed.value.definite
    assert "unreachable" in str(failed.value) and TOKEN not in str(failed.value)


async def test_typing_is_a_chat_action_and_a_failure_is_reported(bot_api: FakeTelegram) -> None:
    async with httpx.AsyncClient() as http:
        telegram = sender(http, bot_api.url)
        await telegram.show_typing(KEY, "tg-update-5")
        bot_api.fail_next("sendChatAction", 403, failure(403, "Forbidden: bot was blocked"))
        with pytest.raises(DeliveryError, match="sendChatAction answered 403") as failed:
            await telegram.show_typing(KEY, "tg-update-6")
    assert failed.value.definite
    assert bot_api.of("sendChatAction") == [{"chat_id": 111, "action": "typing"}] * 2


async def test_a_button_press_is_answered(bot_api: FakeTelegram) -> None:
    async with httpx.AsyncClient() as http:
        await sender(http, bot_api.url).answer_callback("acme", "4382bfdwdsb323b2d9")
    assert bot_api.of("answerCallbackQuery") == [{"callback_query_id": "4382bfdwdsb323b2d9"}]


def test_the_tenants_capabilities_shape_the_reply() -> None:
    plain = DEFAULT_CAPABILITIES[Channel.TELEGRAM].with_overrides(
        {"max_buttons": 0, "max_text_length": 40}
    )
    text = "Your refund of 20 euros is ready. Shall I send it now?"
    payload = {"text": text, "buttons": [{"id": "yes", "title": "Yes"}]}
    bodies = message_bodies(111, payload, plain)
    assert [b["text"] for b in bodies] == [
        "Your refund of 20 euros is ready.",
        "Shall I send it now?\n\n1. Yes",
    ]
    assert all("reply_markup" not in b for b in bodies)
