"""The WhatsApp webhook over real HTTP: the service on a SQLite file, uvicorn on loopback,
replies sent to a fake Graph API. Includes the issue's end-to-end test: a burst of three
webhooks yields exactly one reply."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_graph import FakeGraph, fake_graph
from tests.channels.payloads import (
    PHONE_NUMBER_ID,
    button_reply,
    envelope,
    signed,
    text,
    value,
)
from tests.channels.stored_rows import message_count
from tests.http.conftest import Api, config, serve_api

PATH = "/v1/channels/whatsapp/acme"
HOUR_AGO = int(time.time()) - 3600
"""Provider timestamps (unix seconds) within WhatsApp's 24-hour window."""


def whatsapp_config(graph_url: str) -> dict[str, Any]:
    body = config()
    acme = body["tenants"]["acme"]  # type: ignore[index]
    acme["whatsapp"] = {
        "agent": "support",
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": "${WA_APP_SECRET}",
        "verify_token": "${WA_VERIFY_TOKEN}",
        "access_token": "${WA_ACCESS_TOKEN}",
        "api_base_url": graph_url,
    }
    acme["channels"]["whatsapp"] = {
        "mode": "adaptive",
        "window_ms": 400,
        "min_window_ms": 200,
        "max_window_ms": 1500,
    }
    return body


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
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, whatsapp_config(graph.url), settings):
        yield served


async def post(api: Api, body: dict[str, Any] | bytes, header: str | None = None) -> httpx.Response:
    raw, signature = signed(body)
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = signature if header is None else header
    async with api.client(None) as client:
        return await client.post(PATH, content=raw, headers=headers)


async def stored_texts(api: Api) -> list[str]:
    async with api.client("acme") as client:
        sessions = (await client.get("/v1/sessions", params={"customer": "16505551234"})).json()
        texts: list[str] = []
        for session in sessions["items"]:
            detail = (await client.get(f"/v1/sessions/{session['session_id']}")).json()
            texts += [m["text"] for m in detail["messages"]]
        return texts


def messages(graph: FakeGraph) -> list[Any]:
    """The messages sent (without the read receipts with typing shown while turns run)."""
    return [body for body in graph.bodies() if "type" in body]


async def replies_at(graph: FakeGraph, count: int, timeout_s: float = 10.0) -> list[Any]:
    """The fake Graph API's bodies once it has ``count`` (it is polled: a thread records)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        bodies = messages(graph)
        if len(bodies) >= count:
            return bodies
        await asyncio.sleep(0.05)
    return messages(graph)


async def test_the_verify_handshake_echoes_the_challenge(wa_api: Api) -> None:
    async with wa_api.client(None) as client:
        ok = await client.get(
            PATH,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": "verify-me",
                "hub.challenge": "42",
            },
        )
        bad = await client.get(
            PATH, params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"}
        )
        unknown = await client.get("/v1/channels/whatsapp/globex", params={"hub.mode": "subscribe"})
    assert (ok.status_code, ok.text) == (200, "42")
    assert bad.status_code == 403
    assert unknown.status_code == 404 and "no WhatsApp number" in unknown.json()["message"]


async def test_a_burst_of_three_webhooks_gets_exactly_one_reply(
    wa_api: Api, graph: FakeGraph
) -> None:
    burst = [
        text("wamid.b1", "hello", at=HOUR_AGO + 1000),
        text("wamid.b2", "is anyone", at=HOUR_AGO + 1001),
        text("wamid.b3", "there?", at=HOUR_AGO + 1002),
    ]
    for message in burst:
        answer = await post(wa_api, envelope(value([message])))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
        await asyncio.sleep(0.05)
    replies = await replies_at(graph, 1)
    await asyncio.sleep(1.0)  # a second reply, if the burst were answered twice, comes now
    replies = messages(graph)
    assert len(replies) == 1, replies
    [reply] = replies
    assert reply["to"] == "16505551234" and reply["type"] == "text"
    assert reply["text"]["body"] == "Hi from acme"
    [(path, headers, _body)] = [r for r in graph.received if "type" in r[2]]
    assert path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert headers["Authorization"] == "Bearer EAAG-token"
    assert await stored_texts(wa_api) == ["hello", "is anyone", "there?"]


async def test_meta_retries_of_a_batch_store_nothing_twice(wa_api: Api, graph: FakeGraph) -> None:
    batch = envelope(
        value(
            [
                text("wamid.r1", "hello", at=HOUR_AGO + 10),
                text("wamid.r2", "again", at=HOUR_AGO + 11),
            ]
        )
    )
    first, retry = await post(wa_api, batch), await post(wa_api, batch)
    assert first.json() | {"skipped": []} == {
        "accepted": 2,
        "duplicates": 0,
        "statuses_applied": 0,
        "statuses_ignored": 0,
        "skipped": [],
    }
    assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 2)
    await replies_at(graph, 1)
    assert await stored_texts(wa_api) == ["hello", "again"]


async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(wa_api: Api) -> None:
    body = envelope(value([text("wamid.s1", "hello")]))
    _raw, other = signed(body, secret="not-the-app-secret")
    assert (await post(wa_api, body, header=other)).status_code == 401
    assert (await post(wa_api, body, header="")).status_code == 401
    assert await stored_texts(wa_api) == []


async def test_malformed_and_oversized_bodies_get_a_clear_4xx(wa_api: Api) -> None:
    not_json = await post(wa_api, b"{not json")
    assert not_json.status_code == 400 and not_json.json()["error"] == "malformed_json"
    invalid = await post(wa_api, {"object": "whatsapp_business_account", "entry": {}})
    assert invalid.status_code == 422
    assert invalid.json()["message"] == "entry: input should be a valid list"
    huge = envelope(value([text("wamid.h", "x" * 70_000)]))
    assert (await post(wa_api, json.dumps(huge).encode())).status_code == 413
    assert await stored_texts(wa_api) == []


async def reply_status(api: Api) -> tuple[str, str]:
    async with api.client("acme") as client:
        sessions = (await client.get("/v1/sessions", params={"customer": "16505551234"})).json()
        session_id = sessions["items"][0]["session_id"]
        detail = (await client.get(f"/v1/sessions/{session_id}")).json()
    [reply] = detail["replies"]
    return session_id, reply["status"]


async def events_of(api: Api, kind: str) -> list[dict[str, Any]]:
    async with api.client("acme") as client:
        answer = await client.get("/v1/events", params={"kind": kind})
    return list(answer.json()["items"])


async def test_statuses_move_replies_forward_only_and_are_shown_as_events(
    wa_api: Api, graph: FakeGraph
) -> None:
    await post(wa_api, envelope(value([text("wamid.q1", "hello", at=HOUR_AGO + 1000)])))
    await replies_at(graph, 1)
    for _ in range(100):  # the relay records the acceptance right after the 200
        if await events_of(wa_api, "response.delivered"):
            break
        await asyncio.sleep(0.05)
    wamid = "wamid.out-1"

    def status(name: str, at: int) -> dict[str, Any]:
        return {"id": wamid, "status": name, "timestamp": str(at), "recipient_id": "16505551234"}

    # Meta batches and reorders: read (t=30) before delivered (t=20) in one body.
    first = await post(
        wa_api, envelope(value(statuses=[status("read", 30), status("delivered", 20)]))
    )
    assert first.status_code == 200, first.text
    assert (first.json()["statuses_applied"], first.json()["statuses_ignored"]) == (2, 0)
    late = await post(wa_api, envelope(value(statuses=[status("delivered", 21)])))
    unknown = {"id": "wamid.not-ours", "status": "read", "timestamp": "40", "recipient_id": "1"}
    stranger = await post(wa_api, envelope(value(statuses=[unknown])))
    assert (late.json()["statuses_applied"], late.json()["statuses_ignored"]) == (0, 1)
    assert (stranger.json()["statuses_applied"], stranger.json()["statuses_ignored"]) == (0, 1)
    _session, shown = await reply_status(wa_api)
    assert shown == "read"
    events = await events_of(wa_api, "response.status")
    assert [(e["data"]["previous"], e["data"]["status"]) for e in events] == [
        ("sent", "delivered"),
        ("delivered", "read"),
    ]
    assert all(e["data"]["provider_message_id"] == wamid for e in events)
    assert all(len(e["correlation"]) == 7 for e in events)  # every id of the turn


async def test_a_reply_outside_the_24_hour_window_is_refused_with_its_reason(
    wa_api: Api, graph: FakeGraph
) -> None:
    yesterday = int(time.time()) - 25 * 3600
    await post(wa_api, envelope(value([text("wamid.old", "hello", at=yesterday)])))
    failed: list[dict[str, Any]] = []
    for _ in range(200):
        failed = await events_of(wa_api, "response.failed")
        if failed:
            break
        await asyncio.sleep(0.05)
    [event] = failed
    assert "24-hour customer-service window" in event["data"]["error"]
    assert graph.received == []
    _session, shown = await reply_status(wa_api)
    assert shown == "failed"


async def test_the_message_is_marked_read_with_typing_while_the_answer_is_written(
    wa_api: Api, graph: FakeGraph
) -> None:
    await post(wa_api, envelope(value([text("wamid.t1", "slow please", at=HOUR_AGO)])))
    await replies_at(graph, 1)
    bodies = graph.bodies()
    read = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.t1",
        "typing_indicator": {"type": "text"},
    }
    assert bodies[0] == read
    assert bodies[-1]["text"]["body"] == "slow answer"


async def test_the_session_shows_where_each_message_and_reply_went(
    wa_api: Api, graph: FakeGraph
) -> None:
    await post(wa_api, envelope(value([text("wamid.w1", "hello", at=HOUR_AGO)])))
    await replies_at(graph, 1)
    async with wa_api.client("acme") as client:
        sessions = (await client.get("/v1/sessions", params={"customer": "16505551234"})).json()
        session_id = sessions["items"][0]["session_id"]
        detail: dict[str, Any] = {}
        for _ in range(100):  # the relay records the acceptance right after the 200
            detail = (await client.get(f"/v1/sessions/{session_id}")).json()
            if detail["replies"] and detail["replies"][0]["status"] == "sent":
                break
            await asyncio.sleep(0.05)
    [message] = detail["messages"]
    assert (message["channel"], message["address"]) == ("whatsapp", "16505551234")
    [reply] = detail["replies"]
    assert (reply["channel"], reply["address"], reply["fallback_of"]) == (
        "whatsapp",
        "16505551234",
        None,
    )


async def test_a_change_for_another_number_is_skipped_audited_and_not_stored(wa_api: Api) -> None:
    foreign = value([text("wamid.f1", "hello", at=HOUR_AGO)])
    foreign["metadata"]["phone_number_id"] = "999000111"
    answer = await post(wa_api, envelope(foreign))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (0, 0)
    [reason] = answer.json()["skipped"]
    assert "addressed to phone number id '999000111'" in reason
    assert await stored_texts(wa_api) == []
    [event] = await events_of(wa_api, "webhook.refused")
    assert event["data"]["provider"] == "whatsapp" and event["data"]["reason"] == reason
    assert event["data"]["field"] == "metadata.phone_number_id"


def _with(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**message, **fields}


def _titled(title: Any) -> dict[str, Any]:
    reply = button_reply("wamid.m", "cancel-button", "Cancel", at=HOUR_AGO)
    reply["interactive"]["button_reply"]["title"] = title
    return envelope(value([reply]))


def _profile(profile: Any) -> dict[str, Any]:
    body = value([text("wamid.m", "hello", at=HOUR_AGO)])
    body["contacts"] = [{"profile": profile, "wa_id": "16505551234"}]
    return envelope(body)


def _field(name: str, content: Any) -> dict[str, Any]:
    body = value([text("wamid.m", "hello", at=HOUR_AGO)], statuses=[])
    body[name] = content
    return envelope(body)


HELLO = text("wamid.m", "hello", at=HOUR_AGO)


@pytest.mark.parametrize(
    ("body", "accepted", "reason"),
    [
        pytest.param(_profile("Sheena"), 1, None, id="profile-a-string"),
        pytest.param(_profile(["Sheena"]), 1, None, id="profile-a-list"),
        pytest.param(_field("contacts", 5), 1, None, id="contacts-a-number"),
        pytest.param(_field("messages", 5), 0, "value.messages: input should be", id="messages-5"),
        pytest.param(_field("statuses", 5), 0, "value.statuses: input should be", id="statuses-5"),
        pytest.param(_titled(["Cancel"]), 1, None, id="title-a-list"),
        pytest.param(_titled({"text": "Cancel"}), 1, None, id="title-an-object"),
        pytest.param(
            envelope(value([_with(HELLO, timestamp="9223372036854775808")])),
            0,
            "messages[0].timestamp: expected unix seconds",
            id="timestamp-2**63",
        ),
        pytest.param(
            envelope(value([_with(HELLO, timestamp="-5")])),
            0,
            "messages[0].timestamp: expected unix seconds",
            id="timestamp-negative",
        ),
        pytest.param(
            envelope(value([_with(HELLO, timestamp=2**63)])),
            0,
            "messages[0].timestamp: 9223372036854775808 is not a time a message can have",
            id="timestamp-an-integer-2**63",
        ),
        pytest.param(
            envelope(value([_with(HELLO, **{"from": "abc"})])),
            0,
            "messages[0].from: expected a wa_id",
            id="from-abc",
        ),
    ],
)
async def test_a_malformed_item_is_skipped_with_its_reason_or_taken_without_the_field(
    wa_api: Api, tmp_path: Path, body: dict[str, Any], accepted: int, reason: str | None
) -> None:
    """Meta retries every non-200 for days: never a 5xx, and a malformed item is skipped
    (200, audited) rather than refusing the whole delivery."""
    answer = await post(wa_api, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == accepted
    skipped = answer.json()["skipped"]
    if reason is None:
        assert skipped == []
        assert message_count(tmp_path / "data") == 1
        return
    [why] = skipped
    assert reason in why, why
    assert message_count(tmp_path / "data") == 0
    [event] = await events_of(wa_api, "webhook.skipped")
    assert event["data"]["reasons"] == [why]
