"""W3C trace context goes out: a tool backend and a channel provider called for a message
receive a ``traceparent`` in that message's trace (the caller's, or the one acf started),
even though the turn runner and the relay run outside the request. Requests to ``/v1``
without a trace, and events stored without a valid trace id, are counted in ``/metrics``
(seed 002 R6, Q14)."""

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.domain.channels import Channel
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.entrypoints.http.context import ApiSettings
from acf.entrypoints.http.middleware import trace_from
from tests.channels.fake_telegram import FakeTelegram, failure
from tests.channels.telegram_updates import SECRET_TOKEN, text_update
from tests.channels.test_telegram_webhook import BOT_TOKEN, PATH, telegram_config
from tests.http.conftest import Api, serve_api, settled
from tests.loopback import LoopbackServer, serving

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class RecordingTelegram(FakeTelegram):
    """The fake Bot API, keeping each call's method and headers."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, Mapping[str, str]]] = []
        super().__init__()

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        self.headers.append((path.rpartition("/")[2], headers))
        return super().answer(path, headers, raw)


class OrderBackend(LoopbackServer):
    """An HTTP tool's backend: every order is shipped; each call's headers are kept."""

    def __init__(self) -> None:
        self.headers: list[Mapping[str, str]] = []
        self._lock = threading.Lock()
        super().__init__(poll_interval=0.05)

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            self.headers.append(headers)
        return 200, {"status": "shipped"}


@pytest.fixture
def bot_api() -> Iterator[RecordingTelegram]:
    with serving(RecordingTelegram()) as server:
        yield server


@pytest.fixture
def backend() -> Iterator[OrderBackend]:
    with serving(OrderBackend()) as server:
        yield server


def service_config(bot_api: FakeTelegram, backend: OrderBackend) -> dict[str, Any]:
    """Telegram for tenant acme, its ``lookup_order`` tool an HTTP backend."""
    body = telegram_config(bot_api.url)
    acme = body["tenants"]["acme"]
    acme["tools"] = [
        {
            "name": "lookup_order",
            "policy": "pure",
            "args_schema": {"type": "object", "required": ["order_id"]},
            "http": {"method": "POST", "url": f"{backend.url}/orders/{{order_id}}"},
        }
    ]
    return body


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("TG_SECRET_TOKEN", SECRET_TOKEN)


@pytest.fixture
async def api(
    tmp_path: Path, bot_api: RecordingTelegram, backend: OrderBackend
) -> AsyncIterator[Api]:
    async for served in serve_api(tmp_path, service_config(bot_api, backend), ApiSettings()):
        yield served


async def webhook(api: Api, update: dict[str, Any], traceparent: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN}
    if traceparent is not None:
        headers["traceparent"] = traceparent
    async with api.client(None) as client:
        return await client.post(PATH, content=json.dumps(update).encode(), headers=headers)


async def replied(api: Api, bot_api: RecordingTelegram) -> list[Mapping[str, str]]:
    """The headers of the sendMessage calls, once the customer's session has settled."""
    async with api.client("acme") as client:
        for _ in range(200):
            found = (await client.get("/v1/sessions", params={"customer": "111"})).json()
            if found["items"]:
                break
            await asyncio.sleep(0.05)
        [only] = found["items"]
        await settled(client, only["session_id"])
    return [headers for method, headers in bot_api.headers if method == "sendMessage"]


async def sent(bot_api: RecordingTelegram, count: int) -> None:
    """Until the fake has seen ``count`` sendMessage calls (a thread records them)."""
    for _ in range(400):
        if sum(method == "sendMessage" for method, _ in bot_api.headers) >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"fewer than {count} sendMessage calls: {bot_api.headers}")


def trace_of(headers: Mapping[str, str]) -> str | None:
    return trace_from(headers.get("traceparent"))


async def test_the_tool_and_the_provider_are_called_in_the_callers_trace(
    api: Api, bot_api: RecordingTelegram, backend: OrderBackend
) -> None:
    r = await webhook(api, text_update(1, "order 1002 status"), f"00-{TRACE}-b7ad6b7169203331-01")
    assert r.status_code == 200
    sends = await replied(api, bot_api)
    assert sends and [trace_of(h) for h in sends] == [TRACE] * len(sends)
    assert backend.headers and [trace_of(h) for h in backend.headers] == [TRACE]
    # Every call the turn and the relay made (typing included) is in the trace, each
    # with its own parent span id, never the caller's.
    assert {trace_of(h) for _, h in bot_api.headers} == {TRACE}
    assert all("b7ad6b7169203331" not in h["traceparent"] for _, h in bot_api.headers)


async def test_a_message_without_a_trace_is_answered_in_the_trace_acf_started(
    api: Api, bot_api: RecordingTelegram, backend: OrderBackend
) -> None:
    r = await webhook(api, text_update(2, "order 1003 status"), None)
    assert r.status_code == 200
    started = r.headers["x-trace-id"]
    sends = await replied(api, bot_api)
    assert sends and {trace_of(h) for h in sends} == {started}
    assert [trace_of(h) for h in backend.headers] == [started]


async def test_a_reply_resumed_after_a_restart_is_sent_in_its_turns_trace(
    tmp_path: Path, bot_api: RecordingTelegram, backend: OrderBackend
) -> None:
    """The relay that resumes a reply after a restart runs in no request and no turn: the
    trace comes from the reply's turn, read with the row."""
    for _ in range(3):  # the provider is down: the reply stays queued (retried in 1 s, 2 s)
        bot_api.fail_next("sendMessage", 500, failure(500, "Internal Server Error"))
    body = service_config(bot_api, backend)
    first = serve_api(tmp_path, body, ApiSettings())
    api = await anext(first)
    try:
        r = await webhook(api, text_update(7, "hello"), f"00-{TRACE}-b7ad6b7169203331-01")
        assert r.status_code == 200
        await sent(bot_api, 1)
    finally:
        await first.aclose()  # stopped with the reply still queued
    bot_api.answers.clear()
    bot_api.headers.clear()
    second = serve_api(tmp_path, body, ApiSettings())
    api = await anext(second)
    try:
        sends = await replied(api, bot_api)
    finally:
        await second.aclose()
    assert sends and {trace_of(h) for h in sends} == {TRACE}


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of ``name{labels}`` in a Prometheus exposition, 0 when absent."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in metrics.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(f"{name}{{") and set(series[len(name) + 1 : -1].split(",")) == want:
            return float(value)
    return 0.0


async def test_requests_without_a_trace_are_counted_by_route(
    api: Api, bot_api: RecordingTelegram
) -> None:
    await webhook(api, text_update(3, "hello"), None)
    await webhook(api, text_update(4, "hello again"), f"00-{TRACE}-b7ad6b7169203331-01")
    async with api.client("acme") as client:
        await client.get("/v1/sessions")  # no traceparent
        await client.get("/v1/sessions", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
        await client.get("/healthz")  # not an API route: not counted
        text = (await client.get("/metrics")).text
    assert sample(text, "acf_requests_total", route="webhook_telegram") == 2
    assert sample(text, "acf_requests_without_trace_total", route="webhook_telegram") == 1
    assert sample(text, "acf_requests_total", route="api") == 2
    assert sample(text, "acf_requests_without_trace_total", route="api") == 1
    assert "healthz" not in text and 'route="other"' not in text


async def test_events_stored_without_a_valid_trace_id_are_counted(api: Api) -> None:
    # A message handed to ingress with a trace id that is not one (an embedding
    # application's bug): the events of its turn are stored without a valid trace id.
    key = SessionKey("acme", "support", "zoe", Channel.WEB)
    accepted = await api.service.ingress.accept(NewMessage(key, "m-1", text="hello"), "not-a-trace")
    async with api.client("acme") as client:
        await settled(client, accepted.session_id)
        text = (await client.get("/metrics")).text
    untraced = "acf_events_without_trace_total"
    assert sample(text, untraced, tenant="acme", kind="turn.committed") == 1
    assert sample(text, untraced, tenant="acme", kind="response.delivered") == 1
    assert sample(text, "acf_turns_total", tenant="acme", outcome="committed") == 1
