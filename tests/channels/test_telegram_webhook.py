"""The Telegram webhook over real HTTP: the service on a SQLite file, uvicorn on loopback,
replies sent to a fake Bot API. Telegram retries a non-2xx, so every refusal stores
nothing and every retry of an accepted update is a duplicate."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_telegram import FakeTelegram, failure, fake_telegram
from tests.channels.stored_rows import message_count
from tests.channels.telegram_updates import SECRET_TOKEN, button_press, chat, text_update
from tests.http.conftest import Api, config, serve_api, settled

PATH = "/v1/channels/telegram/acme"
BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


def telegram_config(api_url: str, rate: str = "50/second") -> dict[str, Any]:
    body = config(rate)
    acme = body["tenants"]["acme"]  # type: ignore[index]
    acme["telegram"] = {
        "agent": "support",
        "bot_token": "${TG_BOT_TOKEN}",
        "secret_token": "${TG_SECRET_TOKEN}",
        "api_base_url": api_url,
    }
    acme["channels"]["telegram"] = {
        "mode": "adaptive",
        "window_ms": 400,
        "min_window_ms": 200,
        "max_window_ms": 1500,
    }
    return body


@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    with fake_telegram() as server:
        yield server


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("TG_SECRET_TOKEN", SECRET_TOKEN)


async def serve(tmp_path: Path, bot_api: FakeTelegram, rate: str) -> AsyncIterator[Api]:
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, telegram_config(bot_api.url, rate), settings):
        yield served


@pytest.fixture
async def tg_api(tmp_path: Path, bot_api: FakeTelegram) -> AsyncIterator[Api]:
    async for served in serve(tmp_path, bot_api, "50/second"):
        yield served


@pytest.fixture
async def slow_api(tmp_path: Path, bot_api: FakeTelegram) -> AsyncIterator[Api]:
    """A tenant allowed one message per 2 seconds."""
    async for served in serve(tmp_path, bot_api, "1 per 2 seconds"):
        yield served


async def post(
    api: Api, body: dict[str, Any] | bytes, token: str | None = SECRET_TOKEN, path: str = PATH
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = token
    async with api.client(None) as client:
        return await client.post(path, content=raw, headers=headers)


async def session(api: Api) -> dict[str, Any] | None:
    """The customer's Telegram session once settled (every message consumed, every reply
    sent or failed), or None when nothing was stored."""
    async with api.client("acme") as client:
        found = (await client.get("/v1/sessions", params={"customer": "111"})).json()["items"]
        if not found:
            return None
        [only] = found
        assert only["channel"] == "telegram"
        return await settled(client, only["session_id"])


async def stored(api: Api) -> list[str | None]:
    detail = await session(api)
    return [] if detail is None else [m["text"] or m["button_id"] for m in detail["messages"]]


async def calls_of(bot_api: FakeTelegram, method: str, count: int) -> list[Any]:
    """The fake's bodies of ``method`` once it has ``count`` (polled: a thread records)."""
    deadline = asyncio.get_running_loop().time() + 10.0
    while asyncio.get_running_loop().time() < deadline:
        bodies = bot_api.of(method)
        if len(bodies) >= count:
            return bodies
        await asyncio.sleep(0.05)
    return bot_api.of(method)


async def test_an_update_posted_twice_is_stored_once_and_answered_once(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    update = text_update(100, "hello")
    first, retry = await post(tg_api, update), await post(tg_api, update)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 1, "duplicates": 0, "skipped": []}
    assert retry.json() == {"accepted": 0, "duplicates": 1, "skipped": []}
    detail = await session(tg_api)
    assert detail is not None and [m["text"] for m in detail["messages"]] == ["hello"]
    assert [r["status"] for r in detail["replies"]] == ["sent"]
    assert bot_api.of("sendMessage") == [{"chat_id": 111, "text": "Hi from acme"}]
    assert {call.token for call in bot_api.calls} == {BOT_TOKEN}


async def test_a_burst_of_three_updates_gets_exactly_one_reply(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    for update_id, text in [(200, "hello"), (201, "is anyone"), (202, "there?")]:
        answer = await post(tg_api, text_update(update_id, text, at=1000 + update_id))
        assert answer.json()["accepted"] == 1, answer.text
    assert await stored(tg_api) == ["hello", "is anyone", "there?"]
    assert bot_api.of("sendMessage") == [{"chat_id": 111, "text": "Hi from acme"}]


async def test_a_wrong_or_missing_secret_token_is_refused_and_nothing_is_stored(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    wrong = await post(tg_api, text_update(300, "hello"), token="not-the-token")
    missing = await post(tg_api, text_update(300, "hello"), token=None)
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["error"] == "bad_secret_token"
    assert "X-Telegram-Bot-Api-Secret-Token" in wrong.json()["message"]
    unknown = await post(tg_api, text_update(300, "hello"), path="/v1/channels/telegram/globex")
    assert unknown.status_code == 404 and "no Telegram bot" in unknown.json()["message"]
    assert await stored(tg_api) == []
    assert bot_api.calls == []


async def test_a_secret_token_missing_or_invalid_in_the_environment_is_a_503(
    tg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_SECRET_TOKEN", "has spaces")
    invalid = await post(tg_api, text_update(310, "hello"), token="has spaces")
    assert invalid.status_code == 503
    assert "TG_SECRET_TOKEN" in invalid.json()["message"]
    assert "has spaces" not in invalid.json()["message"]
    monkeypatch.delenv("TG_SECRET_TOKEN")
    missing = await post(tg_api, text_update(310, "hello"))
    assert missing.status_code == 503 and "TG_SECRET_TOKEN" in missing.json()["message"]
    assert await stored(tg_api) == []


async def test_malformed_and_oversized_bodies_get_a_clear_4xx_and_lose_nothing(
    tg_api: Api,
) -> None:
    assert (await post(tg_api, text_update(400, "hello"))).status_code == 200
    not_json = await post(tg_api, b"{not json")
    assert not_json.status_code == 400 and not_json.json()["error"] == "malformed_json"
    no_id = await post(tg_api, {"message": {"text": "hi"}})
    assert no_id.status_code == 422
    assert no_id.json()["message"] == "update_id: field required"
    float_chat = text_update(401, "hi")
    float_chat["message"]["chat"]["id"] = 111.0
    bad_chat = await post(tg_api, float_chat)
    assert bad_chat.status_code == 422
    assert bad_chat.json()["message"] == "message.chat.id: input should be a valid integer"
    huge = await post(tg_api, text_update(402, "x" * 70_000))
    assert huge.status_code == 413
    assert await stored(tg_api) == ["hello"]


async def test_an_update_acf_does_not_take_is_acknowledged_and_skipped(tg_api: Api) -> None:
    group = text_update(500, "hello")
    group["message"]["chat"] = chat(-1001, "group")
    answer = await post(tg_api, group)
    assert answer.status_code == 200
    assert answer.json() == {
        "accepted": 0,
        "duplicates": 0,
        "skipped": ["update 500: a group chat is not taken (private chats only)"],
    }
    assert await stored(tg_api) == []
    async with tg_api.client("acme") as client:
        answer = await client.get("/v1/events", params={"kind": "webhook.skipped"})
    [event] = answer.json()["items"]
    assert event["data"]["provider"] == "telegram"
    assert event["data"]["reasons"] == [
        "update 500: a group chat is not taken (private chats only)"
    ]


@pytest.mark.parametrize(
    ("date", "complaint"),
    [
        (2**63, "message.date: 9223372036854775808 is not a time a message can have"),
        (-5, "message.date: -5 is not a time a message can have"),
        (0, "message.date: 0 is not a time a message can have"),
    ],
)
async def test_a_date_no_message_can_have_is_a_422_and_nothing_is_stored(
    tg_api: Api, tmp_path: Path, date: int, complaint: str
) -> None:
    answer = await post(tg_api, text_update(600, "hello", at=date))
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"].startswith(complaint)
    assert message_count(tmp_path / "data") == 0


async def test_malformed_optional_fields_are_dropped_and_the_message_stored(
    tg_api: Api, tmp_path: Path
) -> None:
    photo = text_update(700, "x")
    del photo["message"]["text"]
    photo["message"] |= {
        "photo": [{"file_id": "p1", "width": "wide"}],
        "caption": ["not", "text"],
        "from": "Ada",
        "edit_date": "later",
    }
    answer = await post(tg_api, photo)
    assert (answer.status_code, answer.json()["accepted"]) == (200, 1), answer.text
    assert message_count(tmp_path / "data") == 1


async def test_a_button_press_is_stored_and_answered(tg_api: Api, bot_api: FakeTelegram) -> None:
    answer = await post(tg_api, button_press(600, "refund-yes", "Yes", query_id="q-600"))
    assert answer.json() == {"accepted": 1, "duplicates": 0, "skipped": []}
    detail = await session(tg_api)
    assert detail is not None
    [press] = detail["messages"]
    assert (press["button_id"], press["text"]) == ("refund-yes", None)
    assert press["provider_message_id"] == "tg-update-600"
    assert await calls_of(bot_api, "answerCallbackQuery", 1) == [{"callback_query_id": "q-600"}]


async def test_a_failed_answer_to_a_press_does_not_refuse_the_update(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    bot_api.fail_next("answerCallbackQuery", 400, failure(400, "Bad Request: query is too old"))
    answer = await post(tg_api, button_press(610, "refund-no", "No", query_id="q-610"))
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert await calls_of(bot_api, "answerCallbackQuery", 1) == [{"callback_query_id": "q-610"}]
    assert await stored(tg_api) == ["refund-no"]


async def test_an_outage_of_the_bot_api_is_retried_without_a_duplicate_reply(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    bot_api.fail_next("sendMessage", 502, failure(502, "Bad Gateway"))
    assert (await post(tg_api, text_update(700, "hello"))).status_code == 200
    detail = await session(tg_api)  # settled: the retry succeeded
    assert detail is not None
    [reply] = detail["replies"]
    assert (reply["status"], reply["attempts"]) == ("sent", 2)
    sends = bot_api.of("sendMessage")
    assert sends == [{"chat_id": 111, "text": "Hi from acme"}] * 2  # one failed, one accepted
    async with tg_api.client("acme") as client:
        delivered = await client.get("/v1/events", params={"kind": "response.delivered"})
    [event] = delivered.json()["items"]
    assert event["data"]["provider_message_id"] == "111:1"


async def test_over_the_tenants_rate_the_update_is_stored_and_its_retry_is_a_duplicate(
    slow_api: Api,
) -> None:
    assert (await post(slow_api, text_update(800, "hello"))).status_code == 200
    over = await post(slow_api, text_update(801, "again"))  # within the same 2 seconds
    assert over.status_code == 200 and over.json() == {
        "accepted": 1,
        "duplicates": 0,
        "skipped": [],
    }
    retried = await post(slow_api, text_update(801, "again"))
    assert retried.json() == {"accepted": 0, "duplicates": 1, "skipped": []}
    assert await stored(slow_api) == ["hello", "again"]
    async with slow_api.client("acme") as client:
        found = await client.get("/v1/events", params={"kind": "rate.exceeded"})
    exceeded = found.json()["items"]
    assert exceeded and {e["data"]["channel"] for e in exceeded} == {"telegram"}


async def test_the_chat_shows_typing_while_the_answer_is_written(
    tg_api: Api, bot_api: FakeTelegram
) -> None:
    answer = await post(tg_api, text_update(900, "slow please"))  # the rule takes 1.5 s
    assert answer.json()["accepted"] == 1, answer.text
    assert await calls_of(bot_api, "sendMessage", 1) == [{"chat_id": 111, "text": "slow answer"}]
    typing = bot_api.of("sendChatAction")
    assert typing and all(body == {"chat_id": 111, "action": "typing"} for body in typing)
    methods = [call.method for call in bot_api.calls]
    assert methods.index("sendChatAction") < methods.index("sendMessage")
