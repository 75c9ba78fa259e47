"""The Twilio webhooks over real HTTP: the service on a SQLite file, uvicorn on loopback,
replies sent to a fake Twilio Messages API on loopback. Twilio signs the URL it requested:
acme sits behind a proxy (``public_url``), globex is reached directly."""

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.channels.twilio.routes import EMPTY_TWIML
from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_twilio import FakeTwilio, Received, fake_twilio, message_sid
from tests.channels.twilio_payloads import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    OUR_NUMBER,
    OUR_WHATSAPP,
    sid,
    signed,
    sms,
    status,
    whatsapp,
)
from tests.http.conftest import Api, config, serve_api

PUBLIC = "https://acf.example.com"
PATH = "/v1/channels/twilio/acme"
STATUS_PATH = f"{PATH}/status"
FAST = {"mode": "adaptive", "window_ms": 300, "min_window_ms": 100, "max_window_ms": 1000}


def twilio_config(twilio_url: str) -> dict[str, Any]:
    body = config()
    tenants: dict[str, Any] = body["tenants"]  # type: ignore[assignment]
    for tenant in ("acme", "globex"):
        tenants[tenant]["twilio"] = {
            "agent": "support",
            "account_sid": ACCOUNT_SID,
            "auth_token": "${TWILIO_AUTH_TOKEN}",
            "from_number": OUR_NUMBER,
            "api_base_url": twilio_url,
        }
        tenants[tenant]["channels"] |= {"sms": FAST, "whatsapp": FAST}
    tenants["acme"]["twilio"] |= {"whatsapp_from": OUR_WHATSAPP, "public_url": PUBLIC}
    tenants["globex"]["limits"]["accepted_messages"] = "1/minute"
    return body


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def tw_api(
    tmp_path: Path, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, twilio_config(twilio.url), settings):
        yield served


async def post(
    api: Api,
    form: dict[str, str],
    path: str = PATH,
    signed_url: str | None = None,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
) -> httpx.Response:
    """POST ``form`` as Twilio does, signed over ``signed_url`` (the public URL by default)."""
    body, computed = signed(signed_url or f"{PUBLIC}{path}", form, token)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    headers["X-Twilio-Signature"] = computed if signature is None else signature
    async with api.client(None) as client:
        return await client.post(path, content=body, headers=headers)


async def sessions_of(api: Api, customer: str, tenant: str = "acme") -> list[dict[str, Any]]:
    async with api.client(tenant) as client:
        listed = (await client.get("/v1/sessions", params={"customer": customer})).json()
        return [
            (await client.get(f"/v1/sessions/{s['session_id']}")).json() for s in listed["items"]
        ]


async def stored_texts(api: Api, customer: str = CUSTOMER, tenant: str = "acme") -> list[str]:
    return [m["text"] for s in await sessions_of(api, customer, tenant) for m in s["messages"]]


async def requests_at(twilio: FakeTwilio, count: int, timeout_s: float = 10.0) -> list[Received]:
    """The fake Twilio's requests once it has ``count`` (it is polled: a thread records)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if len(twilio.requests()) >= count:
            break
        await asyncio.sleep(0.05)
    return twilio.requests()


async def events_of(api: Api, kind: str) -> list[dict[str, Any]]:
    async with api.client("acme") as client:
        answer = await client.get("/v1/events", params={"kind": kind})
    return list(answer.json()["items"])


async def reply_status(api: Api, expected: str, customer: str = CUSTOMER) -> str:
    """The reply's status once it is ``expected``, or what it is at the deadline."""
    shown = ""
    for _ in range(200):
        [session] = await sessions_of(api, customer)
        shown = session["replies"][0]["status"] if session["replies"] else "none"
        if shown == expected:
            break
        await asyncio.sleep(0.05)
    return shown


async def test_a_signed_sms_is_stored_once_and_answered_once(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    form = sms(sid(1), "hello")
    first, retry = await post(tw_api, form), await post(tw_api, form)  # Twilio's retry
    for answer in (first, retry):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.text == EMPTY_TWIML
    await requests_at(twilio, 1)
    await asyncio.sleep(1.0)  # a second reply, if the message were answered twice, comes now
    [request] = twilio.requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.form == [
        ("To", CUSTOMER),
        ("From", OUR_NUMBER),
        ("StatusCallback", f"{PUBLIC}{STATUS_PATH}"),
        ("Body", "Hi from acme"),
    ]
    assert await stored_texts(tw_api) == ["hello"]
    [session] = await sessions_of(tw_api, CUSTOMER)
    assert session["channel"] == "sms"


async def test_status_callbacks_move_the_reply_forward_only(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    await post(tw_api, sms(sid(2), "hello"))
    [request] = await requests_at(twilio, 1)
    assert await reply_status(tw_api, "sent") == "sent"
    callback = request.field("StatusCallback")  # where Twilio will post, as it signs it
    path = callback.removeprefix(PUBLIC)
    reply_sid = message_sid(1)

    async def report(name: str, message: str = reply_sid) -> dict[str, Any]:
        answer = await post(tw_api, status(message, name), path=path, signed_url=callback)
        assert answer.status_code == 200, answer.text
        return {k: answer.json()[k] for k in ("statuses_applied", "statuses_ignored")}

    # Callbacks race: delivered arrives before sent, queued and sending come late.
    assert await report("delivered") == {"statuses_applied": 1, "statuses_ignored": 0}
    for late in ("sent", "sending", "queued", "delivered"):
        assert await report(late) == {"statuses_applied": 0, "statuses_ignored": 1}
    assert await report("delivered", message=sid(99)) == {
        "statuses_applied": 0,
        "statuses_ignored": 1,
    }  # a message acf did not send
    assert await reply_status(tw_api, "delivered") == "delivered"
    events = await events_of(tw_api, "response.status")
    assert [(e["data"]["previous"], e["data"]["status"]) for e in events] == [("sent", "delivered")]
    assert events[0]["data"]["provider_message_id"] == reply_sid


async def test_a_failure_reported_later_is_shown_with_its_error_code(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    await post(tw_api, sms(sid(3), "hello"))
    await requests_at(twilio, 1)
    assert await reply_status(tw_api, "sent") == "sent"
    failed = status(message_sid(1), "undelivered", ErrorCode="30003")
    answer = await post(tw_api, failed, path=STATUS_PATH)
    assert answer.json()["statuses_applied"] == 1
    assert await reply_status(tw_api, "failed") == "failed"
    [event] = await events_of(tw_api, "response.status")
    assert (event["data"]["status"], event["data"]["error"]) == ("failed", "30003")


async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    form = sms(sid(4), "hello")
    local_url = f"{tw_api.base_url}{PATH}"  # what the server sees, not what Twilio asked
    refused = [
        await post(tw_api, form, token="another-accounts-token"),
        await post(tw_api, form, signature=""),
        await post(tw_api, form, signed_url=local_url),
        await post(tw_api, form, signed_url=f"{PUBLIC}{PATH}/"),
        await post(
            tw_api, form, signature=signed(f"{PUBLIC}{PATH}", sms(sid(4), "hello?"))[1]
        ),  # a signature of another body
        await post(tw_api, status(sid(5), "delivered"), path=STATUS_PATH, token="wrong"),
    ]
    for answer in refused:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "bad_signature"
    assert await stored_texts(tw_api) == []
    assert twilio.requests() == []


async def test_malformed_and_oversized_bodies_get_a_clear_4xx_and_lose_nothing(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    async with tw_api.client(None) as client:
        as_json = await client.post(PATH, json=sms(sid(6), "hello"))
        not_a_form = await client.post(
            PATH,
            content=b"{not a form}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert (as_json.status_code, as_json.json()["error"]) == (415, "unsupported_media_type")
    assert (not_a_form.status_code, not_a_form.json()["error"]) == (400, "malformed_form")
    no_sid = {k: v for k, v in sms(sid(7), "hello").items() if k != "MessageSid"}
    missing = await post(tw_api, no_sid)
    assert missing.status_code == 422
    assert missing.json()["message"] == "MessageSid: missing or empty"
    too_long = await post(tw_api, sms(sid(8), "x" * 1601))
    assert too_long.status_code == 422 and too_long.json()["message"].startswith("Body: 1601")
    no_status = {k: v for k, v in status(sid(9), "sent").items() if k != "MessageStatus"}
    bad_status = await post(tw_api, no_status, path=STATUS_PATH)
    assert bad_status.status_code == 422
    assert bad_status.json()["message"] == "MessageStatus: missing or empty"
    huge = await post(tw_api, sms(sid(10), "hello", Padding="x" * 70_000))
    assert huge.status_code == 413
    assert await stored_texts(tw_api) == []
    # Nothing was taken from those; the good message after them is, once.
    accepted = await post(tw_api, sms(sid(11), "hello"))
    assert accepted.status_code == 200
    assert await stored_texts(tw_api) == ["hello"]
    assert len(await requests_at(twilio, 1)) == 1


async def test_whatsapp_through_twilio_is_answered_from_the_whatsapp_sender(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    answer = await post(tw_api, whatsapp(sid(12), "hello"))
    assert (answer.status_code, answer.text) == (200, EMPTY_TWIML)
    [request] = await requests_at(twilio, 1)
    assert request.field("From") == f"whatsapp:{OUR_WHATSAPP}"
    assert request.field("To") == "whatsapp:+14158675310"
    assert request.field("Body") == "Hi from acme"
    [session] = await sessions_of(tw_api, "14158675310")
    assert session["channel"] == "whatsapp"
    assert [m["text"] for m in session["messages"]] == ["hello"]


async def test_a_provider_outage_is_retried_without_a_duplicate(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    twilio.answers.append((503, {"code": 20503, "message": "Service unavailable"}))
    await post(tw_api, sms(sid(13), "hello"))
    assert await reply_status(tw_api, "sent") == "sent"  # after the relay's 1 s backoff
    first, second = twilio.requests()
    assert first.form == second.form
    [delivered] = await events_of(tw_api, "response.delivered")
    assert delivered["data"]["provider_message_id"] == message_sid(1)
    assert delivered["data"]["attempt"] == 2
    await asyncio.sleep(1.0)  # nothing more is sent
    assert len(twilio.requests()) == 2


async def test_a_refusal_is_definite_and_not_retried(tw_api: Api, twilio: FakeTwilio) -> None:
    refusal = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
    twilio.answers.append((400, refusal))
    await post(tw_api, sms(sid(14), "hello"))
    assert await reply_status(tw_api, "failed") == "failed"
    [failed] = await events_of(tw_api, "response.failed")
    assert "Twilio answered 400: 21610" in failed["data"]["error"]
    await asyncio.sleep(1.5)  # past the relay's first backoff: nothing is sent again
    assert len(twilio.requests()) == 1


async def test_without_a_public_url_the_request_url_is_signed(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    path = "/v1/channels/twilio/globex"
    direct = f"{tw_api.base_url}{path}"
    assert (await post(tw_api, sms(sid(15), "hello"), path=path, signed_url=direct)).is_success
    proxied = await post(tw_api, sms(sid(16), "hello"), path=path)  # signed over PUBLIC
    assert proxied.status_code == 401
    # globex takes 1 message a minute: the next is over, and taken all the same.
    over = await post(tw_api, sms(sid(17), "hello again"), path=path, signed_url=direct)
    assert over.status_code == 200 and over.text == EMPTY_TWIML
    assert await stored_texts(tw_api, tenant="globex") == ["hello", "hello again"]
    sent = await requests_at(twilio, 1)
    assert sent and all("StatusCallback" not in dict(r.form) for r in sent)  # no public URL


async def test_an_unknown_tenant_or_a_missing_token_is_refused(
    tw_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = await post(tw_api, sms(sid(18), "hello"), path="/v1/channels/twilio/initech")
    assert unknown.status_code == 404 and "no Twilio account" in unknown.json()["message"]
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    missing = await post(tw_api, sms(sid(19), "hello"))
    assert missing.status_code == 503 and "TWILIO_AUTH_TOKEN" in missing.json()["message"]
    assert await stored_texts(tw_api) == []


async def test_a_message_for_another_account_or_number_is_refused_and_audited(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    other_account = "AC" + "f" * 32
    refused = {
        "not_tenant_account": await post(tw_api, sms(sid(20), "hello", AccountSid=other_account)),
        "not_tenant_number": await post(tw_api, sms(sid(21), "hello", To="+15550001111")),
    }
    wrong_whatsapp = whatsapp(sid(22), "hello", To="whatsapp:+15550001111")
    sms_to_whatsapp = sms(sid(23), "hello", To=f"whatsapp:{OUR_WHATSAPP}")
    for form in (wrong_whatsapp, sms_to_whatsapp):
        answer = await post(tw_api, form)
        assert (answer.status_code, answer.json()["error"]) == (403, "not_tenant_number")
    for code, answer in refused.items():
        assert (answer.status_code, answer.json()["error"]) == (403, code), answer.text
    status_answer = await post(
        tw_api, status(sid(24), "delivered", AccountSid=other_account), path=STATUS_PATH
    )
    assert (status_answer.status_code, status_answer.json()["error"]) == (
        403,
        "not_tenant_account",
    )
    assert await stored_texts(tw_api) == []
    assert await stored_texts(tw_api, customer="14158675310") == []
    events = await events_of(tw_api, "webhook.refused")
    assert [(e["data"]["provider"], e["data"]["field"]) for e in events] == [
        ("twilio", "AccountSid"),
        ("twilio", "To"),
        ("twilio", "To"),
        ("twilio", "To"),
        ("twilio", "AccountSid"),
    ]
    assert all(other_account not in str(e) for e in events)  # no account id is echoed
    assert "+15550001111 is not one of the tenant's SMS numbers" in str(events[1]["data"])
    await asyncio.sleep(0.5)
    assert twilio.requests() == []


async def test_whatsapp_through_twilio_for_a_tenant_without_it_is_refused(
    tw_api: Api, twilio: FakeTwilio
) -> None:
    path = "/v1/channels/twilio/globex"  # globex has SMS through Twilio, no WhatsApp sender
    answer = await post(tw_api, whatsapp(sid(25), "hello"), path=path, signed_url=None)
    direct = await post(
        tw_api, whatsapp(sid(26), "hello"), path=path, signed_url=f"{tw_api.base_url}{path}"
    )
    assert answer.status_code == 401  # signed over the wrong URL: the signature comes first
    assert (direct.status_code, direct.json()["error"]) == (403, "not_tenant_number")
    assert "WhatsApp does not go through Twilio" in direct.json()["message"]
    assert await stored_texts(tw_api, customer="14158675310", tenant="globex") == []
    assert twilio.requests() == []


async def test_a_messaging_service_number_is_the_tenant_s(
    tmp_path: Path, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    body = twilio_config(twilio.url)
    service_sid = "MG" + "1" * 32
    body["tenants"]["acme"]["twilio"] |= {"messaging_service_sid": service_sid}
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for api in serve_api(tmp_path, body, settings):
        pool = sms(sid(27), "hello", To="+15550002222", MessagingServiceSid=service_sid)
        assert (await post(api, pool)).status_code == 200
        other = sms(sid(28), "hello", To="+15550002222", MessagingServiceSid="MG" + "2" * 32)
        assert (await post(api, other)).status_code == 403
        assert await stored_texts(api) == ["hello"]
