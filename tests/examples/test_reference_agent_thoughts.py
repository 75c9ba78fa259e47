"""A reasoning model's thinking (``reasoning_content`` deltas, as vLLM and DeepSeek stream
it) reaches the client as one ``THOUGHT`` before the answer's chunks. ``FakeOpenAI`` does
not stream reasoning, so a small loopback server plays that model here."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from acf.pipelines.agent_service.protocol import ThoughtData
from tests.examples.reference_service import body, execute, serving

THINKING = ("The customer asks ", "about refunds.")
ANSWER = ("Refunds take ", "5 days.")


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    payload = {"id": "r1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return b"data: " + json.dumps(payload | {"choices": [choice]}).encode() + b"\n\n"


async def reasoning_model(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(chunk({"role": "assistant", "content": ""}))
    for part in THINKING:
        await response.write(chunk({"reasoning_content": part}))
    for part in ANSWER:
        await response.write(chunk({"content": part}))
    await response.write(chunk({}, "stop"))
    await response.write(b"data: [DONE]\n\n")
    return response


@pytest.fixture
async def model_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", reasoning_model)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_reasoning_becomes_one_thought_before_the_answer(
    tmp_path: Path, model_url: str
) -> None:
    async with serving(tmp_path / "s.sqlite3", model_url) as svc:
        got = await execute(svc.http, body("Refund?"), "k-think")
    assert got.types == ["THOUGHT", "ANSWER_CHUNK", "ANSWER_CHUNK", "COMPLETE"]
    assert got.events[0][1] == ThoughtData(
        agent_session_id=got.session_header, text="".join(THINKING)
    )
