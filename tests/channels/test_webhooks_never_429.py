"""Signed provider webhooks are never answered 429: over the tenant's rate every message is
stored and acknowledged, and each one over the rate leaves a ``rate.exceeded`` event
(docs/channels.md, "Rates: 429 or hold"). Twilio (by default) and SendGrid do not retry a
429, so the message would be lost; Meta retries every non-200 for days.

Each provider over real HTTP (the service on a SQLite file, uvicorn on loopback, the
provider's fake for replies) with acme allowed one message a minute, and a burst of
distinct messages from one customer: every answer 2xx, as many messages stored as sent.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.entrypoints.http.context import ApiSettings
from tests.channels import test_telegram_webhook as telegram
from tests.channels import test_twilio_webhook as twilio
from tests.channels import test_whatsapp_webhook as meta
from tests.channels.email_payloads import SIGNING_KEY, mailgun, sendgrid, sign
from tests.channels.fake_graph import FakeGraph, fake_graph
from tests.channels.fake_telegram import FakeTelegram, fake_telegram
from tests.channels.fake_twilio import FakeTwilio, fake_twilio
from tests.channels.payloads import envelope, text, value
from tests.channels.smtp_sink import smtp_sink
from tests.channels.stored_rows import message_count
from tests.channels.telegram_updates import SECRET_TOKEN, text_update
from tests.channels.test_email_webhook import PARSE_AUTH, email_config, post_sendgrid
from tests.channels.twilio_payloads import AUTH_TOKEN, sid, sms, whatsapp
from tests.http.conftest import Api, serve_api

RATE = "1/minute"
BURST = 5
SETTINGS = ApiSettings(max_webhook_bytes=64 * 1024)


def one_a_minute(body: dict[str, Any]) -> dict[str, Any]:
    body["tenants"]["acme"]["limits"]["accepted_messages"] = RATE
    return body


async def exceeded(api: Api) -> list[dict[str, Any]]:
    async with api.client("acme") as client:
        answer = await client.get("/v1/events", params={"kind": "rate.exceeded"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def assert_all_taken(
    api: Api, data_dir: Path, answers: list[httpx.Response], sent: int, channel: str
) -> None:
    """Every answer 2xx, ``sent`` messages stored, one ``rate.exceeded`` event for each
    message after the first (the only one under the rate)."""
    for answer in answers:
        assert answer.is_success, (answer.status_code, answer.text)
        assert "Retry-After" not in answer.headers
    assert message_count(data_dir) == sent
    events = await exceeded(api)
    assert len(events) == sent - 1
    for event in events:
        assert event["data"]["channel"] == channel and event["data"]["limit"] == RATE


# --- Twilio (SMS and WhatsApp through Twilio) ---------------------------------------------


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def tw_api(
    tmp_path: Path, twilio_fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    body = one_a_minute(twilio.twilio_config(twilio_fake.url))
    async for served in serve_api(tmp_path, body, SETTINGS):
        yield served


async def test_twilio_sms_over_the_rate_are_all_stored(tmp_path: Path, tw_api: Api) -> None:
    answers = [await twilio.post(tw_api, sms(sid(n), f"message {n}")) for n in range(BURST)]
    await assert_all_taken(tw_api, tmp_path / "data", answers, BURST, "sms")
    retried = await twilio.post(tw_api, sms(sid(BURST - 1), f"message {BURST - 1}"))
    assert retried.status_code == 200  # Twilio's retry: acknowledged, stored once
    assert message_count(tmp_path / "data") == BURST
    texts = await twilio.stored_texts(tw_api)
    assert sorted(texts) == [f"message {n}" for n in range(BURST)]


async def test_whatsapp_through_twilio_over_the_rate_is_all_stored(
    tmp_path: Path, tw_api: Api
) -> None:
    answers = [
        await twilio.post(tw_api, whatsapp(sid(100 + n), f"message {n}")) for n in range(BURST)
    ]
    await assert_all_taken(tw_api, tmp_path / "data", answers, BURST, "whatsapp")


# --- WhatsApp Cloud API (Meta) --------------------------------------------------------------


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as server:
        yield server


@pytest.fixture
async def wa_api(
    tmp_path: Path, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("WA_APP_SECRET", "wa-app-secret")
    monkeypatch.setenv("WA_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("WA_ACCESS_TOKEN", "EAAG-token")
    body = one_a_minute(meta.whatsapp_config(graph.url))
    async for served in serve_api(tmp_path, body, SETTINGS):
        yield served


async def test_meta_batches_over_the_rate_are_all_stored(tmp_path: Path, wa_api: Api) -> None:
    at = meta.HOUR_AGO
    batch = envelope(value([text(f"wamid.{n}", f"message {n}", at + n) for n in range(3)]))
    single = [
        envelope(value([text(f"wamid.{n}", f"message {n}", at + n)])) for n in range(3, BURST)
    ]
    answers = [await meta.post(wa_api, batch), *[await meta.post(wa_api, b) for b in single]]
    assert answers[0].json()["accepted"] == 3
    await assert_all_taken(wa_api, tmp_path / "data", answers, BURST, "whatsapp")
    retried = await meta.post(wa_api, batch)  # Meta's retry of the batch
    assert retried.status_code == 200 and retried.json()["duplicates"] == 3
    assert message_count(tmp_path / "data") == BURST


# --- Telegram --------------------------------------------------------------------------------


@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    with fake_telegram() as server:
        yield server


@pytest.fixture
async def tg_api(
    tmp_path: Path, bot_api: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TG_BOT_TOKEN", telegram.BOT_TOKEN)
    monkeypatch.setenv("TG_SECRET_TOKEN", SECRET_TOKEN)
    body = one_a_minute(telegram.telegram_config(bot_api.url))
    async for served in serve_api(tmp_path, body, SETTINGS):
        yield served


async def test_telegram_updates_over_the_rate_are_all_stored(tmp_path: Path, tg_api: Api) -> None:
    answers = [
        await telegram.post(tg_api, text_update(500 + n, f"message {n}")) for n in range(BURST)
    ]
    assert [a.json()["accepted"] for a in answers] == [1] * BURST
    await assert_all_taken(tg_api, tmp_path / "data", answers, BURST, "telegram")


# --- Email (Mailgun, SendGrid) -----------------------------------------------------------------


@pytest.fixture
async def mail_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("SENDGRID_PARSE_AUTH", PARSE_AUTH)
    with smtp_sink() as (_server, port):
        body = one_a_minute(email_config(port))
        async for served in serve_api(tmp_path, body, SETTINGS):
            yield served


async def post_mailgun(api: Api, n: int) -> httpx.Response:
    fields = mailgun(text=f"message {n}", message_id=f"<mg-{n}@mail.example.com>")
    sign(fields)
    async with api.client(None) as client:
        return await client.post("/v1/channels/email/acme/mailgun", data=fields)


async def test_mail_over_the_rate_is_all_stored_from_mailgun_and_sendgrid(
    tmp_path: Path, mail_api: Api
) -> None:
    answers = [await post_mailgun(mail_api, n) for n in range(3)]
    for n in range(3, BURST):
        form = sendgrid(text=f"message {n}", message_id=f"<sg-{n}@mail.example.com>")
        answers.append(await post_sendgrid(mail_api, form))
    assert [a.json()["accepted"] for a in answers] == [1] * BURST
    await assert_all_taken(mail_api, tmp_path / "data", answers, BURST, "email")
    events = await exceeded(mail_api)
    assert len({e["data"]["provider_message_id"] for e in events}) == BURST - 1
