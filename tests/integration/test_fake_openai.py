"""``FakeOpenAI`` speaks OpenAI's wire format over real HTTP: the SSE chunks, the whole
answer, scripted errors and cut streams, and a record of every request."""

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from acf.testing.fake_openai import FakeOpenAI, answer_by_model
from acf.testing.fake_openai_script import Answer, CutStream, FakeToolCall, HttpError, tokens

BODY: dict[str, Any] = {
    "model": "gpt-test",
    "messages": [{"role": "user", "content": "Hello, is my parcel on its way?"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def sse_lines(fake: FakeOpenAI, body: dict[str, Any]) -> list[str]:
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line async for line in response.aiter_lines() if line]


async def read_lines_into(lines: list[str], fake: FakeOpenAI) -> None:
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=BODY) as response,
    ):
        async for line in response.aiter_lines():
            lines.append(line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OK.", ["OK."]),
        ("Hello world.", ["Hello", " world."]),
        ("  two  spaces ", ["  two", "  spaces "]),
        ("line\nbreak", ["line", "\nbreak"]),
        ("", []),
        ("   ", ["   "]),
    ],
)
def test_a_token_is_a_word_with_its_leading_space(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected
    assert "".join(tokens(text)) == text


async def test_the_stream_is_openais_chunks_then_done(fake: FakeOpenAI) -> None:
    fake.script(
        Answer("On its way.", tool_calls=(FakeToolCall("track", {"id": "P 1"}, call_id="c9"),))
    )
    lines = await sse_lines(fake, BODY)
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["id"] for c in chunks} == {"chatcmpl-fake1"}
    assert {c["model"] for c in chunks} == {"gpt-test"}
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas[0]["role"] == "assistant"
    assert [d.get("content") for d in deltas[1:4]] == ["On", " its", " way."]
    assert deltas[4]["tool_calls"] == [
        {"index": 0, "id": "c9", "type": "function", "function": {"name": "track", "arguments": ""}}
    ]
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[5:-1]]
    assert "".join(fragments) == '{"id": "P 1"}' and len(fragments) == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["usage"] is None for c in chunks[:-1])
    usage = chunks[-1]["usage"]
    (sent,) = fake.completions
    assert chunks[-1]["choices"] == []
    assert usage == {
        "prompt_tokens": sent.prompt_tokens,
        "completion_tokens": 7,
        "total_tokens": sent.prompt_tokens + 7,
    }
    assert sent.prompt_tokens == len("Hello, is my parcel on its way?") // 4 + 4
    assert (sent.tokens_planned, sent.tokens_streamed, sent.completed) == (7, 7, True)


async def test_no_usage_chunk_unless_asked(fake: FakeOpenAI) -> None:
    lines = await sse_lines(fake, {**BODY, "stream_options": None})
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_the_sdk_reads_both_forms(fake: FakeOpenAI) -> None:
    fake.script(Answer("Hi there.", tool_calls=(FakeToolCall("lookup", '{"q": 1}'),)))
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-x", max_retries=0) as sdk:
        whole = await sdk.chat.completions.create(model="m", messages=BODY["messages"])
        stream = await sdk.chat.completions.create(
            model="m", messages=BODY["messages"], stream=True
        )
        texts = [c.choices[0].delta.content async for c in stream if c.choices]
        models = await sdk.models.list()
    message = whole.choices[0].message
    assert message.content == "Hi there."
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [  # type: ignore[union-attr]
        ("call_1_0", "lookup", '{"q": 1}')
    ]
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.usage is not None and whole.usage.completion_tokens == 5
    assert "".join(t or "" for t in texts) == "OK."  # the script was used up: the responder
    assert [m.id for m in models.data] == ["fake-model"]
    assert [r.path for r in fake.requests] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/models",
    ]
    first = fake.requests[0]
    assert first.headers["authorization"] == "Bearer sk-x"
    assert first.body["model"] == "m" and first.model == "m"
    assert first.messages == BODY["messages"]
    assert fake.requests[0].arrived_at <= fake.requests[1].arrived_at
    assert fake.completions_requested == 2


async def test_errors_are_scripted_with_their_headers(fake: FakeOpenAI) -> None:
    fake.script(HttpError(429, retry_after="3"), HttpError(500, "plain text"))
    async with httpx.AsyncClient() as http:
        limited = await http.post(f"{fake.base_url}/chat/completions", json=BODY)
        broken = await http.post(f"{fake.base_url}/chat/completions", json=BODY)
        invalid = await http.post(f"{fake.base_url}/chat/completions", content=b"{nope")
        unknown = await http.get(f"{fake.base_url}/embeddings")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["error"]["type"] == "invalid_request_error"
    assert (broken.status_code, broken.text) == (500, "plain text")
    assert (invalid.status_code, unknown.status_code) == (400, 404)
    assert [r.status for r in fake.requests] == [429, 500, 400, 404]


async def test_a_responder_answers_by_model(fake: FakeOpenAI) -> None:
    fake.responder = answer_by_model({"known": Answer("Yes.")})
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        known = await sdk.chat.completions.create(model="known", messages=BODY["messages"])
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            await sdk.chat.completions.create(model="other", messages=BODY["messages"])
    assert known.choices[0].message.content == "Yes."


async def test_a_cut_stream_drops_the_connection_without_done(fake: FakeOpenAI) -> None:
    fake.script(CutStream(2))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await read_lines_into(lines, fake)
    contents = [json.loads(x[6:])["choices"][0]["delta"].get("content") for x in lines if x]
    assert contents == ["", "one", " two"]
    (sent,) = fake.completions
    await sent.ended.wait()
    assert (sent.cut, sent.client_closed, sent.completed) == (True, False, False)
    assert (sent.tokens_streamed, sent.tokens_planned) == (2, 6)


async def test_a_client_closing_early_is_recorded(fake: FakeOpenAI) -> None:
    fake.tokens_per_s = 50  # server-wide pace
    fake.script(Answer(" ".join(["word"] * 30)))
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=BODY) as response,
    ):
        async for line in response.aiter_lines():
            if '"content": "word"' in line:
                break
    (sent,) = fake.completions
    await sent.ended.wait()
    assert sent.client_closed and sent.client_closed_at is not None
    assert sent.arrived_at <= sent.client_closed_at
    assert 1 <= sent.tokens_streamed < sent.tokens_planned == 30
    assert not sent.completed


async def test_it_runs_as_a_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acf.testing.fake_openai_server",
        "--port",
        "0",
        "--ttft-ms",
        "1",
        "--tokens-per-s",
        "1000",
        "--answer",
        "Hello from a process.",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(
                model="m", messages=BODY["messages"], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Hello from a process."
    finally:
        process.terminate()
        _, err = await process.communicate()
    assert b"RuntimeWarning" not in err  # acf.testing does not import the module it runs
