"""Where ``GET /v1/stream`` starts: now unless told otherwise (``?after_id=0``: from the
start, ``Last-Event-ID``: after it); a session's stream starts with the session's history."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from acf.entrypoints.http.routes_stream import start_after
from tests.http.conftest import Api, settled


async def _conversation(c: httpx.AsyncClient, message_id: str, text: str) -> str:
    r = await c.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": "carol",
            "client_message_id": message_id,
            "text": text,
        },
    )
    session_id: str = r.json()["session_id"]
    await settled(c, session_id)
    return session_id


async def _next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """The next SSE message's fields (heartbeats skipped)."""
    fields: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(anext(lines), 10)
        if line.startswith(":"):
            continue
        if line == "":
            if fields:
                return fields
            continue
        name, _, value = line.partition(":")
        fields[name] = value.lstrip()


async def test_the_tenant_stream_starts_now_by_default(api: Api) -> None:
    async with api.client() as c:
        sid = await _conversation(c, "m1", "hello")
        history = (await c.get(f"/v1/sessions/{sid}/events")).json()["items"]
        async with c.stream("GET", "/v1/stream") as stream:
            await c.post(
                "/v1/messages",
                json={
                    "agent": "support",
                    "customer": "carol",
                    "client_message_id": "m2",
                    "text": "hello again",
                },
            )
            first = await _next_event(stream.aiter_lines())
        assert first["event"] == "message.received"
        assert int(first["id"]) > history[-1]["event_id"]


async def test_the_tenant_stream_from_the_start_or_after_an_id(api: Api) -> None:
    async with api.client() as c:
        sid = await _conversation(c, "m1", "hello")
        history = (await c.get(f"/v1/sessions/{sid}/events")).json()["items"]
        async with c.stream("GET", "/v1/stream", params={"after_id": 0}) as stream:
            first = await _next_event(stream.aiter_lines())
        assert int(first["id"]) == history[0]["event_id"]
        headers = {"Last-Event-ID": str(history[0]["event_id"])}
        async with c.stream("GET", "/v1/stream", headers=headers) as stream:
            second = await _next_event(stream.aiter_lines())
        assert int(second["id"]) == history[1]["event_id"]


async def test_a_session_stream_starts_with_the_session_s_history(api: Api) -> None:
    async with api.client() as c:
        sid = await _conversation(c, "m1", "hello")
        history = (await c.get(f"/v1/sessions/{sid}/events")).json()["items"]
        async with c.stream("GET", f"/v1/sessions/{sid}/stream") as stream:
            first = await _next_event(stream.aiter_lines())
        assert int(first["id"]) == history[0]["event_id"]


@pytest.mark.parametrize(
    ("last_event_id", "after_id", "start"),
    [
        (None, None, None),  # neither: the route decides (the tenant's stream: now)
        (None, 0, 0),
        (None, 7, 7),
        (5, None, 5),
        (5, 9, 5),  # the header wins: it is what a reconnecting client sends
        (0, 9, 0),
    ],
)
def test_where_a_stream_starts(
    last_event_id: int | None, after_id: int | None, start: int | None
) -> None:
    assert start_after(last_event_id, after_id) == start
