"""Sessions, turns, events, ledger and streams: scoped by tenant; SSE with ids, replay and
heartbeats; health, readiness and metrics."""

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_graph import FakeGraph
from tests.channels.payloads import envelope, signed, text, value
from tests.channels.test_whatsapp_webhook import HOUR_AGO, whatsapp_config
from tests.http.conftest import Api, serve_api, settled
from tests.loopback import serving


async def _acme_session(api: Api) -> str:
    async with api.client() as c:
        r = await c.post(
            "/v1/messages",
            json={
                "agent": "support",
                "customer": "carol",
                "client_message_id": "m1",
                "text": "order 1001 please",
            },
        )
        session_id: str = r.json()["session_id"]
        await settled(c, session_id)
        return session_id


TENANT_PATHS = [
    "/v1/sessions/{sid}",
    "/v1/sessions/{sid}/turns",
    "/v1/sessions/{sid}/events",
    "/v1/sessions/{sid}/stream",
]


@pytest.mark.parametrize("path", TENANT_PATHS)
async def test_another_tenants_session_answers_404(api: Api, path: str) -> None:
    sid = await _acme_session(api)
    async with api.client("acme") as mine:
        if not path.endswith("stream"):
            assert (await mine.get(path.format(sid=sid))).status_code == 200
    async with api.client("globex") as theirs:
        r = await theirs.get(path.format(sid=sid))
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        unknown = await theirs.get(path.format(sid="no-such-session"))
        assert unknown.json() == {**r.json(), "message": unknown.json()["message"]}


async def test_lists_never_show_another_tenants_objects(api: Api) -> None:
    sid = await _acme_session(api)
    async with api.client("acme") as mine:
        assert [s["session_id"] for s in (await mine.get("/v1/sessions")).json()["items"]] == [sid]
        assert (await mine.get("/v1/events")).json()["items"]
        assert len((await mine.get("/v1/ledger")).json()["items"]) == 1
    async with api.client("globex") as theirs:
        assert (await theirs.get("/v1/sessions")).json()["items"] == []
        assert (await theirs.get("/v1/events")).json()["items"] == []
        assert (await theirs.get("/v1/ledger", params={"customer": "carol"})).json()["items"] == []
        by_session = await theirs.get("/v1/ledger", params={"session_id": sid})
        assert by_session.json()["items"] == []
        async with theirs.stream("GET", "/v1/stream") as stream:
            lines = stream.aiter_lines()
            first = await asyncio.wait_for(anext(lines), 5)
            assert first.startswith(":")  # a heartbeat: no event of acme's


async def test_ledger_and_event_filters(api: Api) -> None:
    sid = await _acme_session(api)
    async with api.client() as c:
        entries = (await c.get("/v1/ledger", params={"tool": "lookup_order"})).json()["items"]
        assert [(e["tool"], e["status"], e["customer"]) for e in entries] == [
            ("lookup_order", "succeeded", "carol")
        ]
        assert (await c.get("/v1/ledger", params={"tool": "refund_order"})).json()["items"] == []
        assert (await c.get("/v1/ledger", params={"from_ms": 2**52})).json()["items"] == []
        kinds = {"turn.committed", "response.delivered"}
        events = (await c.get(f"/v1/sessions/{sid}/events", params={"kind": sorted(kinds)})).json()[
            "items"
        ]
        assert {e["kind"] for e in events} == kinds
        bad = await c.get(f"/v1/sessions/{sid}/events", params={"kind": "no.such"})
        assert bad.status_code == 422


async def test_flagged_filter(api: Api) -> None:
    sid = await _acme_session(api)
    async with api.client() as c:
        assert (await c.get("/v1/sessions", params={"flagged": "true"})).json()["items"] == []
        listed = (await c.get("/v1/sessions", params={"flagged": "false"})).json()["items"]
        assert [s["session_id"] for s in listed] == [sid]


async def _read_events(
    lines: AsyncIterator[str], count: int, timeout_s: float = 10.0
) -> tuple[list[dict[str, str]], list[str]]:
    """Read ``count`` events (and the comments between them) from an SSE body's lines."""
    events: list[dict[str, str]] = []
    comments: list[str] = []
    current: dict[str, str] = {}
    while len(events) < count:
        line = await asyncio.wait_for(anext(lines), timeout_s)
        if line.startswith(":"):
            comments.append(line)
        elif line == "":
            if current:
                events.append(current)
            current = {}
        else:
            field, _, value = line.partition(":")
            current[field] = value.lstrip()
    return events, comments


async def test_session_stream_has_increasing_ids_and_replays_after_last_event_id(
    api: Api,
) -> None:
    sid = await _acme_session(api)
    async with api.client() as c:
        stored = (await c.get(f"/v1/sessions/{sid}/events")).json()["items"]
        async with c.stream("GET", f"/v1/sessions/{sid}/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events, _ = await _read_events(stream.aiter_lines(), len(stored))
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert ids == [e["event_id"] for e in stored]
        assert [e["event"] for e in events] == [e["kind"] for e in stored]
        assert json.loads(events[0]["data"])["event_id"] == ids[0]
        middle = ids[len(ids) // 2]
        headers = {"Last-Event-ID": str(middle)}
        async with c.stream("GET", f"/v1/sessions/{sid}/stream", headers=headers) as stream:
            replayed, _ = await _read_events(
                stream.aiter_lines(), len([i for i in ids if i > middle])
            )
        assert [int(e["id"]) for e in replayed] == [i for i in ids if i > middle]


async def test_stream_goes_live_and_sends_heartbeats(api: Api) -> None:
    sid = await _acme_session(api)
    async with api.client() as c:
        last = (await c.get(f"/v1/sessions/{sid}/events")).json()["items"][-1]["event_id"]
        headers = {"Last-Event-ID": str(last)}
        async with c.stream("GET", "/v1/stream", headers=headers) as stream:
            await c.post(
                "/v1/messages",
                json={
                    "agent": "support",
                    "customer": "carol",
                    "client_message_id": "m2",
                    "text": "hello",
                },
            )
            lines = stream.aiter_lines()
            events, _ = await _read_events(lines, 1)
            assert events[0]["event"] == "message.received" and int(events[0]["id"]) > last
            # a quiet stream still hears a heartbeat (every 0.3 s here)
            comments = []
            while not comments:
                line = await asyncio.wait_for(anext(lines), 5)
                if line.startswith(":"):
                    comments.append(line)
            assert comments[0].startswith(": ping")


async def test_health_readiness_and_metrics(api: Api) -> None:
    await _acme_session(api)
    async with api.client(None) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        text = (await c.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("acf_") for name in families)
    samples = [s for f in families.values() for s in f.samples]
    turns = [s for s in samples if s.name == "acf_turns_total" and s.labels.get("tenant") == "acme"]
    assert turns and sum(s.value for s in turns) >= 1
    assert not [s for s in samples if s.labels.get("tenant") == "globex" and s.value > 0]


async def test_readiness_fails_when_the_store_is_closed(api: Api) -> None:
    async with api.client(None) as c:
        await api.service.store.close()
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
    async with api.client() as c:  # a failure the routes do not expect: JSON 500, traced
        r = await c.get("/v1/sessions")
        assert r.status_code == 500 and r.json()["error"] == "internal"
        assert len(r.headers["x-trace-id"]) == 32


class ReportingGraph(FakeGraph):
    """A Graph API that reports each reply delivered as it accepts it: its status webhook
    reaches acf before the answer to the send does (the provider's status system races
    its own answer), so acf has not recorded the message id yet."""

    def __init__(self) -> None:
        super().__init__()
        self.acf_url = ""
        self.status_answers: list[Any] = []

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        status, body = super().answer(path, headers, raw)
        sent = body.get("messages") if isinstance(body, dict) else None
        if sent:
            report = {"id": sent[0]["id"], "status": "delivered", "timestamp": str(HOUR_AGO + 9)}
            report["recipient_id"] = "16505551234"
            raw_status, signature = signed(envelope(value(statuses=[report])))
            answered = httpx.post(
                f"{self.acf_url}/v1/channels/whatsapp/acme",
                content=raw_status,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
            )
            self.status_answers.append(answered.json())
        return status, body


async def reply_statuses(client: httpx.AsyncClient, until: str) -> list[str]:
    """The session's reply statuses, once one reads ``until`` (or after a long while)."""
    shown: list[str] = []
    for _ in range(600):  # 30 s: only a reply that never moves takes that long
        items = (await client.get("/v1/sessions")).json()["items"]
        if items:
            detail = (await client.get(f"/v1/sessions/{items[0]['session_id']}")).json()
            shown = [r["status"] for r in detail["replies"]]
            if until in shown:
                break
        await asyncio.sleep(0.05)
    return shown


async def test_a_reply_the_provider_reported_delivered_reads_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_APP_SECRET", "wa-app-secret")
    monkeypatch.setenv("WA_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("WA_ACCESS_TOKEN", "EAAG-token")
    with serving(ReportingGraph()) as graph:
        served = serve_api(tmp_path, whatsapp_config(graph.url), ApiSettings())
        async with aclosing(served) as apis:
            async for api in apis:
                graph.acf_url = api.base_url
                raw, signature = signed(envelope(value([text("wamid.in-1", "hello", at=HOUR_AGO)])))
                async with api.client() as client:
                    posted = await client.post(
                        "/v1/channels/whatsapp/acme",
                        content=raw,
                        headers={
                            "Content-Type": "application/json",
                            "X-Hub-Signature-256": signature,
                        },
                    )
                    assert posted.status_code == 200, posted.text
                    shown = await reply_statuses(client, "delivered")
                    kinds = {"kind": ["response.delivered", "response.status"]}
                    events = (await client.get("/v1/events", params=kinds)).json()["items"]
    # the status came before the relay's record of the send: not applied then, but later
    assert [answer["statuses_ignored"] for answer in graph.status_answers] == [1]
    assert shown == ["delivered"]
    assert [e["kind"] for e in events] == ["response.delivered", "response.status"]
    assert (events[1]["data"]["previous"], events[1]["data"]["status"]) == ("sent", "delivered")
