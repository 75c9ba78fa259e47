"""Drafts on a session's event stream over real HTTP (DESIGN §16), against the embedded
runtime on SQLite: ``?drafts=true`` merges the running turn's drafts (``reply.draft``, no
SSE id) with the stored events; a superseded attempt's drafts are withdrawn by a stored
event and none of them follows it, nor any of a turn after its committed reply."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.entrypoints.http.context import ApiSettings
from acf.ports.drafts import Draft
from tests.http.conftest import Api, serve_api, settled
from tests.http.drafting import HELD_AFTER, answer, config

WAIT_S = 15.0
HELD_TEXT = "".join(answer(["hold on, where is my order?"])[:HELD_AFTER])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve_api(tmp_path, config(), ApiSettings(heartbeat_s=5, poll_s=0.5)):
        yield served


@dataclass
class Seen:
    """What one stream carried, in order: (SSE id or None, kind, body)."""

    items: list[tuple[str | None, str, dict[str, Any]]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.items]

    def drafts(self, turn_id: str | None = None) -> list[dict[str, Any]]:
        return [
            body
            for _, kind, body in self.items
            if kind == "reply.draft" and turn_id in (None, body["turn_id"])
        ]

    def index(self, kind: str, turn_id: str) -> int:
        return next(
            i
            for i, (_, k, body) in enumerate(self.items)
            if k == kind and body["turn_id"] == turn_id
        )


async def read_until(lines: AsyncIterator[str], seen: Seen, done: Any) -> None:
    """Read SSE messages into ``seen`` until ``done(seen)`` (bounded by WAIT_S)."""
    current: dict[str, str] = {}
    async with asyncio.timeout(WAIT_S):
        while not done(seen):
            line = await anext(lines)
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in current:
                    body = json.loads(current["data"])
                    seen.items.append((current.get("id"), current["event"], body))
                current = {}
                continue
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")


def post(c: httpx.AsyncClient, client_id: str, text: str) -> Any:
    body = {"agent": "support", "customer": "dora", "client_message_id": client_id, "text": text}
    return c.post("/v1/messages", json=body)


def rebuilt(drafts: list[dict[str, Any]]) -> str:
    text = ""
    for d in drafts:
        text = text[: d["data"]["offset"]] + d["data"]["text"]
    return text


async def test_drafts_then_the_reply_and_a_superseded_attempts_withdrawal(api: Api) -> None:
    async with api.client() as c:
        first = (await post(c, "m1", "hold on, where is my order?")).json()
        sid = first["session_id"]
        url = f"/v1/sessions/{sid}/stream?drafts=true"
        async with c.stream("GET", url) as stream:
            lines = stream.aiter_lines()
            seen = Seen()
            # The first turn drafts its first words, then waits: a correction supersedes it.
            await read_until(lines, seen, lambda s: rebuilt(s.drafts()) == HELD_TEXT)
            held = seen.drafts()[0]["turn_id"]
            await post(c, "m2", "the one from Monday")

            def replied(s: Seen) -> bool:
                return any(k == "response.delivered" for k in s.kinds())

            await read_until(lines, seen, replied)
            # A late draft of the superseded attempt, then a canary on a turn of its own: the
            # canary's arrival says the late one was handled (one subscription, in order).
            late = Draft("acme", sid, held, 1, 1, 0, "late words", 0)
            canary = Draft("acme", sid, "canary", 1, 1, 0, "canary", 0)
            api.service.drafts.publish(late)
            api.service.drafts.publish(canary)
            await read_until(lines, seen, lambda s: bool(s.drafts("canary")))
        await settled(c, sid)

    # Drafts carry no SSE id; stored events all do.
    assert all((sse_id is None) == (kind == "reply.draft") for sse_id, kind, _ in seen.items)
    first_draft = seen.drafts(held)[0]
    assert first_draft["data"]["offset"] == 0 and first_draft["data"]["attempt"] == 1
    assert set(first_draft) == {"kind", "at_ms", "session_id", "turn_id", "data"}
    assert set(first_draft["data"]) == {"attempt", "fence", "offset", "text"}
    assert len(seen.drafts(held)) >= 2  # it grew

    # The superseded attempt's withdrawal is stored, and none of its drafts follows it.
    withdrawn = seen.index("reply.draft_withdrawn", held)
    assert seen.items[withdrawn][2]["data"]["attempt"] == 1
    assert seen.index("turn.superseded", held) == withdrawn + 1
    after = [body for _, kind, body in seen.items[withdrawn:] if kind == "reply.draft"]
    assert all(d["turn_id"] != held for d in after)

    # The restart drafts its answer over both messages; its reply replaces the drafts.
    restart = next(body["turn_id"] for _, k, body in seen.items if k == "turn.committed")
    reply = "".join(answer(["hold on, where is my order?", "the one from Monday"])).strip()
    drafts = seen.drafts(restart)
    assert len(drafts) >= 2
    assert reply.startswith(rebuilt(drafts).strip())
    delivered = next(b for _, k, b in seen.items if k == "response.delivered")
    assert delivered["data"]["text"] == reply
    committed = seen.index("turn.committed", restart)
    assert all(
        body["turn_id"] != restart
        for _, kind, body in seen.items[committed:]
        if kind == "reply.draft"
    )
    assert seen.drafts("canary")  # the canary came; the late draft did not
    assert not any(d["data"]["text"] == "late words" for d in seen.drafts())


async def test_streams_without_the_option_carry_no_drafts(api: Api) -> None:
    async with api.client() as c:
        sid = (await post(c, "m1", "where is my order?")).json()["session_id"]
        await settled(c, sid)
        count = len((await c.get(f"/v1/sessions/{sid}/events")).json()["items"])
        async with c.stream("GET", f"/v1/sessions/{sid}/stream") as stream:
            seen = Seen()
            await read_until(stream.aiter_lines(), seen, lambda s: len(s.items) >= count)
    assert seen.items and all(sse_id is not None for sse_id, _, _ in seen.items)
    assert "reply.draft" not in seen.kinds()
    assert api.service.drafts.watched == 0  # type: ignore[attr-defined]
