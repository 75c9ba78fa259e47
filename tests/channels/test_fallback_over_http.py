"""The fallback ladder end to end over real HTTP: Meta refuses a WhatsApp reply for good,
acf sends it once by SMS through Twilio to the customer's linked number, and the
customer's SMS answer joins the WhatsApp session and is answered by SMS. A Graph API
outage (5xx) never falls back. Fake Graph and Twilio servers on loopback record all."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_graph import FakeGraph, fake_graph
from tests.channels.fake_twilio import FakeTwilio, Received, fake_twilio
from tests.channels.payloads import PHONE_NUMBER_ID, envelope, text, value
from tests.channels.payloads import signed as meta_signed
from tests.channels.twilio_payloads import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    OUR_WHATSAPP,
    sid,
    sms,
    whatsapp,
)
from tests.channels.twilio_payloads import signed as twilio_signed
from tests.http.conftest import Api, config, serve_api

PUBLIC = "https://acf.example.com"
WA_ID = "16505551234"
PHONE = "+16505551234"
FAST = {"mode": "adaptive", "window_ms": 300, "min_window_ms": 100, "max_window_ms": 1000}
REFUSED = (400, {"error": {"code": 131026, "message": "Message undeliverable"}})
DOWN = (503, {"error": {"code": 2, "message": "Service temporarily unavailable"}})


def fallback_config(graph_url: str, twilio_url: str) -> dict[str, Any]:
    body = config()
    acme: dict[str, Any] = body["tenants"]["acme"]  # type: ignore[index]
    acme["whatsapp"] = {
        "agent": "support",
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": "${WA_APP_SECRET}",
        "verify_token": "${WA_VERIFY_TOKEN}",
        "access_token": "${WA_ACCESS_TOKEN}",
        "api_base_url": graph_url,
    }
    acme["twilio"] = {
        "agent": "support",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN}",
        "from_number": OUR_NUMBER,
        "api_base_url": twilio_url,
        "public_url": PUBLIC,
    }
    ladder = {**FAST, "fallback": ["telegram", "sms"]}  # acme has no Telegram bot
    acme["channels"] |= {"whatsapp": ladder, "sms": FAST}
    return body


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as server:
        yield server


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def api(
    tmp_path: Path, graph: FakeGraph, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    for name, secret in {
        "WA_APP_SECRET": "wa-app-secret",
        "WA_VERIFY_TOKEN": "verify-me",
        "WA_ACCESS_TOKEN": "EAAG-token",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }.items():
        monkeypatch.setenv(name, secret)
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, fallback_config(graph.url, twilio.url), settings):
        yield served


async def link(api: Api) -> None:
    identities = [{"channel": "whatsapp", "address": WA_ID}, {"channel": "sms", "address": PHONE}]
    async with api.client("acme") as client:
        answer = await client.put(
            "/v1/customers/crm-4711/identities", json={"identities": identities}
        )
    assert answer.status_code == 200, answer.text


async def whatsapp_message(api: Api, wamid: str, body: str) -> str:
    raw, signature = meta_signed(envelope(value([text(wamid, body, at=int(time.time()))])))
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    async with api.client(None) as client:
        answer = await client.post("/v1/channels/whatsapp/acme", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    async with api.client("acme") as client:
        listed = (await client.get("/v1/sessions", params={"customer": WA_ID})).json()
    return str(listed["items"][0]["session_id"])


async def sms_message(api: Api, message_sid: str, body: str) -> None:
    path = "/v1/channels/twilio/acme"
    raw, signature = twilio_signed(f"{PUBLIC}{path}", sms(message_sid, body, sender=PHONE))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Twilio-Signature": signature,
    }
    async with api.client(None) as client:
        answer = await client.post(path, content=raw, headers=headers)
    assert answer.status_code == 200, answer.text


async def sms_sent(twilio: FakeTwilio, count: int) -> list[Received]:
    deadline = asyncio.get_running_loop().time() + 10.0
    while asyncio.get_running_loop().time() < deadline:
        if len(twilio.requests()) >= count:
            break
        await asyncio.sleep(0.05)
    return twilio.requests()


async def events(api: Api, kind: str) -> list[dict[str, Any]]:
    async with api.client("acme") as client:
        return list((await client.get("/v1/events", params={"kind": kind})).json()["items"])


def whatsapp_sends(graph: FakeGraph) -> list[Any]:
    return [body for body in graph.bodies() if "type" in body]


async def test_a_refused_whatsapp_reply_goes_once_by_sms_and_the_answer_joins_the_session(
    api: Api, graph: FakeGraph, twilio: FakeTwilio
) -> None:
    await link(api)
    graph.answers.extend([REFUSED] * 3)  # the reply (and a typing call, if any) refused
    session_id = await whatsapp_message(api, "wamid.f1", "hello")
    [copy] = await sms_sent(twilio, 1)
    assert (copy.field("To"), copy.field("Body")) == (PHONE, "Hi from acme")
    [fallback] = await events(api, "response.fallback")
    assert fallback["session_id"] == session_id
    assert fallback["data"]["from"] == {"channel": "whatsapp", "address": WA_ID}
    assert fallback["data"]["to"] == {"channel": "sms", "address": PHONE}
    await asyncio.sleep(1.0)  # a second copy or a resend, if there were one, comes now
    assert len(twilio.requests()) == 1
    assert len(whatsapp_sends(graph)) == 1  # a definite refusal is not retried

    await sms_message(api, sid(77), "thanks, got it")
    sent = await sms_sent(twilio, 2)
    assert [r.field("To") for r in sent] == [PHONE, PHONE]
    async with api.client("acme") as client:
        detail = (await client.get(f"/v1/sessions/{session_id}")).json()
    channels = [(m["channel"], m["address"], m["text"]) for m in detail["messages"]]
    assert channels == [("whatsapp", WA_ID, "hello"), ("sms", PHONE, "thanks, got it")]
    assert [r["channel"] for r in detail["replies"]] == ["whatsapp", "sms", "sms"]
    assert [r["fallback_of"] is not None for r in detail["replies"]] == [False, True, False]


async def test_a_graph_api_outage_is_retried_and_never_falls_back(
    api: Api, graph: FakeGraph, twilio: FakeTwilio
) -> None:
    await link(api)
    graph.answers.extend([DOWN] * 2)
    await whatsapp_message(api, "wamid.o1", "hello")
    deadline = asyncio.get_running_loop().time() + 15.0
    while asyncio.get_running_loop().time() < deadline:
        if await events(api, "response.delivered"):
            break
        await asyncio.sleep(0.1)
    [delivered] = await events(api, "response.delivered")
    assert delivered["data"]["attempt"] >= 2
    assert twilio.requests() == [] and await events(api, "response.fallback") == []
    assert [b["text"]["body"] for b in whatsapp_sends(graph)][-1] == "Hi from acme"


async def test_a_failed_status_falls_back_past_channels_the_tenant_cannot_send_on(
    api: Api, graph: FakeGraph, twilio: FakeTwilio
) -> None:
    identities = [
        {"channel": "whatsapp", "address": WA_ID},
        {"channel": "telegram", "address": "111"},  # linked, but acme has no bot
        {"channel": "sms", "address": PHONE},
    ]
    async with api.client("acme") as client:
        answer = await client.put(
            "/v1/customers/crm-4711/identities", json={"identities": identities}
        )
        assert answer.status_code == 200, answer.text
    await whatsapp_message(api, "wamid.s1", "hello")
    deadline = asyncio.get_running_loop().time() + 10.0
    while asyncio.get_running_loop().time() < deadline:
        if await events(api, "response.delivered"):
            break
        await asyncio.sleep(0.05)
    [delivered] = await events(api, "response.delivered")
    failed = {
        "id": delivered["data"]["provider_message_id"],
        "status": "failed",
        "timestamp": str(int(time.time())),
        "recipient_id": WA_ID,
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    raw, signature = meta_signed(envelope(value(statuses=[failed])))
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    async with api.client(None) as client:
        posted = await client.post("/v1/channels/whatsapp/acme", content=raw, headers=headers)
    assert posted.json()["statuses_applied"] == 1, posted.text
    [copy] = await sms_sent(twilio, 1)
    assert copy.field("To") == PHONE
    [fallback] = await events(api, "response.fallback")  # straight to SMS: one step
    assert fallback["data"]["to"] == {"channel": "sms", "address": PHONE}


async def test_whatsapp_through_twilio_is_refused_where_whatsapp_goes_through_meta(
    api: Api, graph: FakeGraph, twilio: FakeTwilio
) -> None:
    # acme's WhatsApp is Meta's: a Twilio WhatsApp message is not addressed to acme, and
    # answering it would go out through the Graph API, from another number.
    path = "/v1/channels/twilio/acme"
    form = whatsapp(sid(90), "hello", wa_id=WA_ID, To=f"whatsapp:{OUR_WHATSAPP}")
    raw, signature = twilio_signed(f"{PUBLIC}{path}", form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Twilio-Signature": signature,
    }
    async with api.client(None) as client:
        answer = await client.post(path, content=raw, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (403, "not_tenant_number")
    async with api.client("acme") as client:
        listed = (await client.get("/v1/sessions", params={"customer": WA_ID})).json()
    assert listed["items"] == []
    [refused] = await events(api, "webhook.refused")
    assert refused["data"]["reason"] == "the tenant's WhatsApp does not go through Twilio"
    await asyncio.sleep(0.5)
    assert whatsapp_sends(graph) == [] and twilio.requests() == []
