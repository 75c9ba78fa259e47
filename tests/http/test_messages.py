"""Posting messages and typing signals over HTTP: acceptance, dedupe, idempotency, errors,
limits and the trace id."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.entrypoints.http.context import ApiSettings
from tests.http.conftest import Api, config, serve_api, settled

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def body(text: str = "hello", cid: str = "c1", customer: str = "alice") -> dict[str, object]:
    return {"agent": "support", "customer": customer, "client_message_id": cid, "text": text}


async def test_a_message_is_accepted_answered_and_readable(api: Api) -> None:
    async with api.client() as c:
        r = await c.post("/v1/messages", json=body("hello there"))
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["seq"] == 1 and accepted["duplicate"] is False
        session = await settled(c, accepted["session_id"])
        assert [m["text"] for m in session["messages"]] == ["hello there"]
        assert [(x["text"], x["status"]) for x in session["replies"]] == [("Hi from acme", "sent")]
        turns = (await c.get(f"/v1/sessions/{accepted['session_id']}/turns")).json()["items"]
        assert [t["phase"] for t in turns] == ["committed"]
        assert turns[0]["record"]["outcome"] == "committed"
        assert turns[0]["record"]["replies"] == ["Hi from acme"]


async def test_a_redelivered_message_is_stored_once(api: Api) -> None:
    async with api.client() as c:
        first = (await c.post("/v1/messages", json=body())).json()
        again = (await c.post("/v1/messages", json=body())).json()
        assert again["duplicate"] is True
        assert again["message_id"] == first["message_id"] and again["seq"] == first["seq"]
        session = await settled(c, first["session_id"])
        assert session["last_seq"] == 1 and len(session["replies"]) == 1


async def test_idempotency_key_replays_the_response_and_refuses_another_body(api: Api) -> None:
    async with api.client() as c:
        headers = {"Idempotency-Key": "k-1"}
        first = await c.post("/v1/messages", json=body(), headers=headers)
        second = await c.post("/v1/messages", json=body(), headers=headers)
        assert first.status_code == second.status_code == 202
        assert first.json() == second.json()  # the same response, not "duplicate: true"
        other = await c.post("/v1/messages", json=body("another", cid="c2"), headers=headers)
        assert other.status_code == 422
        assert other.json()["error"] == "idempotency_key_reused"
        session = await settled(c, first.json()["session_id"])
        assert session["last_seq"] == 1  # the refused body was not accepted


async def test_invalid_bodies_name_their_fields(api: Api) -> None:
    async with api.client() as c:
        r = await c.post("/v1/messages", json={"agent": "support", "customer": "a", "txt": "x"})
        assert r.status_code == 422
        fields = {p["field"] for p in r.json()["problems"]}
        assert {"client_message_id", "txt"} <= fields
        r = await c.post(
            "/v1/messages", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["error"] == "invalid"
        r = await c.post(
            "/v1/typing", json={"agent": "support", "customer": "a", "active": "maybe"}
        )
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "active"


async def test_oversized_bodies_get_413_and_nothing_is_stored(api: Api) -> None:
    async with api.client() as c:
        r = await c.post("/v1/messages", json=body("x" * 300_000))
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = await c.post("/v1/messages", json=body("y" * 20_000))  # under the body limit
        assert r.status_code == 413  # over the text limit
        assert r.json()["problems"][0]["field"] == "text"
        sessions = (await c.get("/v1/sessions")).json()["items"]
        assert sessions == []


async def test_unknown_routes_and_agents_answer_json_404(api: Api) -> None:
    async with api.client() as c:
        r = await c.get("/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await c.post("/v1/messages", json={**body(), "agent": "sales"})
        assert r.status_code == 404 and r.json()["error"] == "unknown_agent"


async def test_without_a_valid_key_everything_is_401(api: Api) -> None:
    async with api.client(None) as c:
        assert (await c.post("/v1/messages", json=body())).status_code == 401
        assert (await c.get("/v1/sessions")).status_code == 401
        bad = await c.get("/v1/sessions", headers={"Authorization": "Bearer acf_nope"})
        assert bad.status_code == 401 and "unknown" in bad.json()["message"]
        ok = await c.get("/v1/sessions", headers={"X-API-Key": api.keys["acme"]})
        assert ok.status_code == 200


async def test_a_revoked_key_stops_working(api: Api) -> None:
    records = await api.service.api_keys.list_keys("acme")
    async with api.client() as c:
        assert (await c.get("/v1/sessions")).status_code == 200
        assert await api.service.api_keys.revoke("acme", records[0].key_id, 1)
        assert (await c.get("/v1/sessions")).status_code == 401


async def test_the_trace_id_comes_from_traceparent_and_reaches_the_turn(api: Api) -> None:
    async with api.client() as c:
        r = await c.post(
            "/v1/messages",
            json=body(),
            headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
        )
        assert r.headers["x-trace-id"] == TRACE
        assert r.headers["traceparent"].startswith(f"00-{TRACE}-")
        assert r.json()["trace_id"] == TRACE
        session_id = r.json()["session_id"]
        await settled(c, session_id)
        turns = (await c.get(f"/v1/sessions/{session_id}/turns")).json()["items"]
        assert turns[0]["trace_id"] == TRACE
        events = (await c.get(f"/v1/sessions/{session_id}/events")).json()["items"]
        turn_events = [e for e in events if e["turn_id"] == turns[0]["turn_id"]]
        assert turn_events and {e["trace_id"] for e in turn_events} == {TRACE}
        # a malformed traceparent is ignored: a fresh trace id
        r = await c.post("/v1/messages", json=body(cid="c9"), headers={"traceparent": "junk"})
        assert r.headers["x-trace-id"] != TRACE and len(r.headers["x-trace-id"]) == 32


async def test_typing_is_recorded_as_an_event(api: Api) -> None:
    async with api.client() as c:
        accepted = (await c.post("/v1/messages", json=body())).json()
        r = await c.post(
            "/v1/typing", json={"agent": "support", "customer": "alice", "active": True}
        )
        assert r.status_code == 202 and r.json()["session_id"] == accepted["session_id"]
        events = (await c.get("/v1/events", params={"kind": "typing.started"})).json()["items"]
        assert len(events) == 1 and events[0]["session_id"] == accepted["session_id"]


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve_api(tmp_path, config("2/minute"), ApiSettings()):
        yield served


async def test_over_the_rate_429_with_retry_after_and_nothing_accepted(limited: Api) -> None:
    async with limited.client() as c:
        for i in range(2):
            assert (await c.post("/v1/messages", json=body(cid=f"ok{i}"))).status_code == 202
        r = await c.post("/v1/messages", json=body("third", cid="over"))
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        sessions = (await c.get("/v1/sessions")).json()["items"]
        assert sessions[0]["last_seq"] == 2  # the refused message was not stored
        # another tenant has its own budget
    async with limited.client("globex") as g:
        assert (await g.post("/v1/messages", json=body(cid="g1"))).status_code == 202


async def test_racing_requests_with_one_key_and_different_bodies_accept_one(api: Api) -> None:
    async with api.client() as c:
        headers = {"Idempotency-Key": "race"}
        bodies = [body(f"hi {i}", cid=f"r{i}") for i in range(5)]
        responses = await asyncio.gather(
            *(c.post("/v1/messages", json=b, headers=headers) for b in bodies)
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [202, 422, 422, 422, 422]
        winner = next(r for r in responses if r.status_code == 202).json()
        session = await settled(c, winner["session_id"])
        assert session["last_seq"] == 1  # the refused bodies were not accepted
        same = await asyncio.gather(
            *(
                c.post(
                    "/v1/messages", json=body("same", cid="s"), headers={"Idempotency-Key": "k2"}
                )
                for _ in range(4)
            )
        )
        assert {r.status_code for r in same} == {202}
        assert len({r.text for r in same}) == 1


async def test_client_message_ids_are_scoped_by_customer(api: Api) -> None:
    async with api.client() as c:
        alice = (await c.post("/v1/messages", json=body("hello", cid="1"))).json()
        bob = (await c.post("/v1/messages", json=body("hello", cid="1", customer="bob"))).json()
        assert bob["duplicate"] is False and bob["session_id"] != alice["session_id"]
        for accepted in (alice, bob):
            session = await settled(c, accepted["session_id"])
            assert [m["client_message_id"] for m in session["messages"]] == ["1"]
            assert len(session["replies"]) == 1


async def test_another_tenant_posting_the_same_ids_touches_nothing_of_ours(api: Api) -> None:
    async with api.client() as mine, api.client("globex") as theirs:
        ours = (await mine.post("/v1/messages", json=body())).json()
        other = (await theirs.post("/v1/messages", json=body())).json()
        assert other["duplicate"] is False and other["session_id"] != ours["session_id"]
        typing = await theirs.post(
            "/v1/typing", json={"agent": "support", "customer": "alice", "active": True}
        )
        assert typing.json()["session_id"] == other["session_id"]
        ours_now = await settled(mine, ours["session_id"])
        assert ours_now["last_seq"] == 1
        assert [r["text"] for r in ours_now["replies"]] == ["Hi from acme"]
        events = (await mine.get("/v1/events", params={"kind": "typing.started"})).json()
        assert events["items"] == []


async def test_an_oversized_chunked_body_gets_413(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"agent": "support", "customer": "alice", "client_message_id": "big", "text": "'
        for _ in range(40):
            yield b"x" * 8192
        yield b'"}'

    async with api.client() as c:
        r = await c.post(
            "/v1/messages", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        assert (await c.get("/v1/sessions")).json()["items"] == []


async def test_a_key_of_a_tenant_missing_from_the_configuration_is_refused(api: Api) -> None:
    await api.service.api_keys.create("ghost", "test", "acf_ghost_key_0123456789", 1)
    async with api.client(None) as c:
        headers = {"Authorization": "Bearer acf_ghost_key_0123456789"}
        r = await c.post("/v1/messages", json=body(), headers=headers)
        assert r.status_code == 401 and "not in this configuration" in r.json()["message"]


def test_traceparent_parsing_follows_w3c() -> None:
    from acf.entrypoints.http.middleware import trace_from

    good = f"00-{TRACE}-00f067aa0ba902b7-01"
    assert trace_from(good) == TRACE
    assert trace_from(f"01-{TRACE}-00f067aa0ba902b7-01-extra") == TRACE  # a later version
    assert trace_from(good + "-extra") is None  # version 00 has exactly four parts
    assert trace_from(f"ff-{TRACE}-00f067aa0ba902b7-01") is None
    assert trace_from(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None
    assert trace_from(f"00-{TRACE}-{'0' * 16}-01") is None
    assert trace_from(f"00-{TRACE.upper()}-00f067aa0ba902b7-01") is None  # lowercase only
    assert trace_from(None) is None and trace_from("") is None


def test_web_dedupe_ids_round_trip_and_other_ids_are_not_parsed() -> None:
    from acf.adapters.channels.web import client_message_id_of, web_provider_id

    assert client_message_id_of(web_provider_id("support", "alice", "x|y")) == "x|y"
    assert web_provider_id("a", "b", "1") != web_provider_id("a", "c", "1")
    assert client_message_id_of("wamid.HBgL") is None
    assert client_message_id_of("web|short") is None
