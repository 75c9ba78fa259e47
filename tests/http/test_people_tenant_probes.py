"""Scope and tenant probes of the people-in-the-loop routes: an ``api`` key gets 403 on every
one of them; an ``operator`` key reads the customer API but gets 403 on its writes and on
the configuration routes; another tenant's operator gets 404 on every route that names a
session or a block, and changes nothing."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http.people import People, answered_session, events_of, handed_off, serve_people


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[People]:
    async for served in serve_people(tmp_path):
        yield served


def session_routes(session_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/v1/sessions/{session_id}"
    return [
        ("POST", f"{base}/handoff", {"reason": "probe"}),
        ("POST", f"{base}/claim", {}),
        ("POST", f"{base}/operator-messages", {"text": "probe"}),
        ("POST", f"{base}/notes", {"text": "probe"}),
        ("GET", f"{base}/notes", None),
        ("POST", f"{base}/release", {}),
        ("POST", f"{base}/resume", {}),
    ]


def tenant_routes(block_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/v1/inbox", None),
        ("POST", "/v1/blocks", {"channel": "web", "customer": "zed", "reason": "probe"}),
        ("GET", "/v1/blocks", None),
        ("DELETE", f"/v1/blocks/{block_id}", None),
        ("GET", "/v1/holds", None),
        ("GET", "/v1/abuse/summary", None),
    ]


def unclocked(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inbox entries without their waiting time (it grows with the clock)."""
    return [{k: v for k, v in e.items() if k != "waiting_ms"} for e in entries]


async def call(
    c: httpx.AsyncClient, route: tuple[str, str, dict[str, Any] | None]
) -> httpx.Response:
    method, path, body = route
    return await c.request(method, path, json=body)


async def test_an_api_key_gets_403_on_every_people_route(people: People) -> None:
    session_id = await handed_off(people)
    async with people.operator("ana") as ana:
        r = await ana.post("/v1/blocks", json={"channel": "web", "customer": "x", "reason": "y"})
        block_id = r.json()["block_id"]
    async with people.customer_api() as c:
        for route in [*session_routes(session_id), *tenant_routes(block_id)]:
            r = await call(c, route)
            assert (r.status_code, r.json()["error"]) == (403, "forbidden"), route
            assert "--scope operator" in r.json()["message"]
        audit = await events_of(c, session_id, "handoff.claimed", "operator.note_added")
    assert audit == []


async def test_an_operator_key_reads_but_does_not_write_the_customer_api(
    people: People,
) -> None:
    session_id = await answered_session(people)
    async with people.operator("ana") as ana:
        for path in (
            "/v1/sessions",
            f"/v1/sessions/{session_id}",
            f"/v1/sessions/{session_id}/turns",
            f"/v1/sessions/{session_id}/events",
            "/v1/events",
            "/v1/ledger",
        ):
            assert (await ana.get(path)).status_code == 200, path
        for method, path, body in (
            (
                "POST",
                "/v1/messages",
                {"agent": "support", "customer": "carol", "client_message_id": "o1", "text": "x"},
            ),
            ("POST", "/v1/typing", {"agent": "support", "customer": "carol", "active": True}),
            ("POST", f"/v1/sessions/{session_id}/agent-answer", {"ask_id": "a", "text": "x"}),
            ("PUT", f"/v1/sessions/{session_id}/config-overrides", {"overrides": {}}),
            ("GET", "/v1/config/versions", None),
            ("POST", "/v1/config/validate", {"yaml": "version: 1"}),
        ):
            r = await ana.request(method, path, json=body)
            assert (r.status_code, r.json()["error"]) == (403, "forbidden"), (path, r.text)
    async with people.customer_api() as c:
        detail = (await c.get(f"/v1/sessions/{session_id}")).json()
    assert detail["last_seq"] == 1  # the operator's POST /v1/messages stored nothing


async def test_another_tenants_operator_gets_404_and_changes_nothing(people: People) -> None:
    session_id = await handed_off(people)
    async with people.operator("ana") as ana:
        r = await ana.post(
            "/v1/blocks", json={"channel": "web", "customer": "mallory", "reason": "spam"}
        )
        assert r.status_code == 201
        block_id = r.json()["block_id"]
        assert (
            await ana.post(f"/v1/sessions/{session_id}/notes", json={"text": "mine"})
        ).status_code == 201
        before_inbox = unclocked((await ana.get("/v1/inbox")).json()["entries"])

    async with people.operator("ana", "globex") as intruder:
        for route in session_routes(session_id):
            r = await call(intruder, route)
            assert (r.status_code, r.json()["error"]) == (404, "not_found"), (route, r.text)
        r = await intruder.delete(f"/v1/blocks/{block_id}")
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        assert (await intruder.get("/v1/inbox")).json()["entries"] == []
        assert (await intruder.get("/v1/inbox?state=resolved")).json()["entries"] == []
        assert (await intruder.get("/v1/blocks?include_lifted=true")).json()["blocks"] == []
        assert (await intruder.get("/v1/holds")).json()["sessions"] == []
        for path in (f"/v1/sessions/{session_id}", f"/v1/sessions/{session_id}/events"):
            assert (await intruder.get(path)).status_code == 404

    async with people.operator("ana") as ana:
        assert unclocked((await ana.get("/v1/inbox")).json()["entries"]) == before_inbox
        [entry] = before_inbox
        assert entry["claimed_by"] is None and entry["mode"] == "human"
        notes = (await ana.get(f"/v1/sessions/{session_id}/notes")).json()["notes"]
        assert [n["text"] for n in notes] == ["mine"]
        [block] = (await ana.get("/v1/blocks")).json()["blocks"]
        assert block["block_id"] == block_id and block["active"] is True
    async with people.customer_api() as c:
        audit = await events_of(
            c, session_id, "handoff.claimed", "operator.replied", "session.resumed"
        )
        assert audit == []
