"""The reference agent service (examples/agent_service) over real HTTP on loopback, its
model a ``FakeOpenAI``: streamed answers, tool rounds, the ASK_USER cycle, resume by
``Last-Event-ID``, idempotency by key, disconnect and supersede, errors, and acf's own
client against it."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx_sse import aconnect_sse

from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts
from acf.pipelines.agent_service.protocol import (
    SESSION_HEADER,
    AgentEvent,
    AnswerChunkData,
    AskUserData,
    CompleteData,
    CustomerMessage,
    ErrorData,
    EventType,
    ExecuteRequest,
    SideEffect,
    ToolEndData,
    ToolStartData,
    UserContext,
)
from acf.testing import Answer, FakeOpenAI, FakeToolCall, HttpError
from tests.examples.reference_service import (
    API_KEY,
    EXECUTE,
    Served,
    body,
    execute,
    headers,
    serving,
)

SUMMARY = "The zipper of order 1001 broke."
TICKET = FakeToolCall("open_ticket", {"summary": SUMMARY})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def svc(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[Served]:
    async with serving(tmp_path / "service.sqlite3", fake) as served:
        yield served


def chunks(events: list[tuple[int, AgentEvent]]) -> str:
    return "".join(e.text for _, e in events if isinstance(e, AnswerChunkData))


async def test_an_answer_streams_in_chunks_then_completes(svc: Served, fake: FakeOpenAI) -> None:
    fake.script(Answer("Hello there, how can I help?"))
    history = (("user", "Hi"), ("assistant", "Hello! What can I do for you?"))
    got = await execute(svc.http, body("Where is my order?", history=history), "k-happy")

    assert got.types == ["ANSWER_CHUNK"] * 6 + ["COMPLETE"]
    assert [i for i, _ in got.events] == list(range(1, 8))
    assert chunks(got.events) == "Hello there, how can I help?"
    assert got.last == CompleteData(
        agent_session_id=got.session_header, answer="Hello there, how can I help?"
    )
    sent = fake.completions[0].body
    assert sent["stream"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][-1]["content"] == "Where is my order?"
    assert {t["function"]["name"] for t in sent["tools"]} == {
        "search_help",
        "open_ticket",
        "ask_customer",
    }
    status = await svc.http.get(f"/v1/sessions/{got.session_header}", headers=headers("-"))
    assert status.json() == {
        "agent_session_id": got.session_header,
        "status": "COMPLETED",
        "profile": "support",
        "pending_ask_id": None,
    }


async def test_a_tool_round_shows_its_start_and_end_then_the_answer(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(
        Answer("", (FakeToolCall("search_help", {"query": "refund"}),)),
        Answer("Refunds take 5 business days."),
    )
    got = await execute(svc.http, body("How long does a refund take?"), "k-tool")

    assert got.types[:2] == ["TOOL_START", "TOOL_END"]
    assert got.types[-1] == "COMPLETE"
    start, end = got.events[0][1], got.events[1][1]
    assert isinstance(start, ToolStartData)
    assert (start.tool, start.args) == ("search_help", {"query": "refund"})
    assert start.side_effect is SideEffect.NONE
    assert start.status_text == "Searching the help center..."
    assert isinstance(end, ToolEndData) and end.ok and end.summary == "1 article found"
    result = fake.completions[1].messages[-1]
    assert result["role"] == "tool"
    assert "5 business days" in json.loads(result["content"])["results"][0]["answer"]
    assert got.last == CompleteData(
        agent_session_id=got.session_header, answer="Refunds take 5 business days."
    )


async def test_ask_user_then_the_answer_continues_the_same_agent_session(
    svc: Served, fake: FakeOpenAI
) -> None:
    ask = FakeToolCall("ask_customer", {"question": "Which order?", "options": ["1001", "1002"]})
    fake.script(Answer("", (ask,)), Answer("Order 1001 ships tomorrow."))
    first = await execute(svc.http, body("Where is my order?"), "k-ask-1")
    session = first.session_header
    asked = first.last
    assert first.types == ["ASK_USER"]
    assert isinstance(asked, AskUserData)
    assert (asked.question, asked.options) == ("Which order?", ["1001", "1002"])
    status = (await svc.http.get(f"/v1/sessions/{session}", headers=headers("-"))).json()
    assert (status["status"], status["pending_ask_id"]) == ("AWAITING_USER", asked.ask_id)

    wrong = await svc.http.post(
        EXECUTE,
        json=body("1001", session=session, answer=("not-the-ask", "1001")),
        headers=headers("k-ask-wrong"),
    )
    assert wrong.status_code == 409
    assert "no pending ask" in wrong.json()["error"]

    second = await execute(
        svc.http, body("1001", session=session, answer=(asked.ask_id, "1001")), "k-ask-2"
    )
    assert second.session_header == session
    shipped = "Order 1001 ships tomorrow."
    assert second.last == CompleteData(agent_session_id=session, answer=shipped)
    result = fake.completions[1].messages[-1]
    assert result == {"role": "tool", "tool_call_id": asked.ask_id, "content": "1001"}
    status = (await svc.http.get(f"/v1/sessions/{session}", headers=headers("-"))).json()
    assert (status["status"], status["pending_ask_id"]) == ("COMPLETED", None)


async def test_a_corrected_answer_after_the_answer_was_taken_is_the_next_message(
    svc: Served, fake: FakeOpenAI
) -> None:
    ask = FakeToolCall("ask_customer", {"question": "Which order?"})
    fake.script(Answer("", (ask,)), Answer("1001 ships."), Answer("1002 ships."))
    first = await execute(svc.http, body("Where is my order?"), "k-c-1")
    session, asked = first.session_header, first.last
    assert isinstance(asked, AskUserData)
    await execute(svc.http, body("1001", session=session, answer=(asked.ask_id, "1001")), "k-c-2")
    corrected = body(
        "sorry, 1002", session=session, answer=(asked.ask_id, "sorry, 1002"), supersedes="k-c-2"
    )
    third = await execute(svc.http, corrected, "k-c-3")
    assert third.last == CompleteData(agent_session_id=session, answer="1002 ships.")
    said = fake.completions[2].messages[-1]
    assert said == {"role": "user", "content": "(A correction of my answer) sorry, 1002"}


async def test_the_same_key_replays_and_never_opens_a_second_ticket(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(Answer("", (TICKET,)), Answer("Ticket T-000001 is open."))
    first = await execute(svc.http, body("I want a person."), "k-ticket")
    start = first.events[0][1]
    assert isinstance(start, ToolStartData) and start.side_effect is SideEffect.IRREVERSIBLE

    again = await execute(svc.http, body("I want a person."), "k-ticket")
    later = await execute(svc.http, body("I want a person."), "k-ticket", last_event_id="2")

    assert again.events == first.events
    assert later.events == [(i, e) for i, e in first.events if i > 2]
    assert fake.completions_requested == 2
    tickets = await svc.service.store.tickets()
    assert [(t.execution_key, t.summary) for t in tickets] == [("k-ticket", SUMMARY)]


async def test_a_stream_cut_after_a_side_effecting_start_resumes_without_a_second_run(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(Answer("", (TICKET,)), Answer("Your ticket is open."))
    cut = await execute(
        svc.http, body("I want a person."), "k-cut", until=lambda e: e.type is EventType.TOOL_START
    )
    resumed = await execute(
        svc.http, body("I want a person."), "k-cut", last_event_id=str(cut.events[-1][0])
    )

    assert cut.types == ["TOOL_START"]
    assert resumed.types[0] == "TOOL_END" and resumed.types[-1] == "COMPLETE"
    assert [i for i, _ in resumed.events] == list(range(2, 2 + len(resumed.events)))
    assert len(await svc.service.store.tickets()) == 1


async def test_a_disconnect_cancels_the_model_call_and_no_tool_starts(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(Answer("", (TICKET,), ttft_ms=10_000))
    async with aconnect_sse(
        svc.http, "POST", EXECUTE, json=body("I want a person."), headers=headers("k-gone")
    ) as source:
        assert source.response.status_code == 200
        (request,) = await fake.wait_for_completions(1)
    await asyncio.wait_for(request.ended.wait(), 5)

    assert request.client_closed
    assert await svc.service.store.tickets() == []
    assert await svc.service.store.events("k-gone") == []


async def test_a_model_round_cut_by_a_disconnect_resumes_past_the_text_already_sent(
    svc: Served, fake: FakeOpenAI
) -> None:
    text = "one two three four five six seven eight"
    fake.script(Answer(text, tokens_per_s=10), Answer(text))
    cut = await execute(
        svc.http, body("Count."), "k-round", until=lambda e: e.type is EventType.ANSWER_CHUNK
    )
    await asyncio.wait_for(fake.completions[0].ended.wait(), 5)
    assert fake.completions[0].client_closed
    resumed = await execute(svc.http, body("Count."), "k-round", last_event_id="1")

    assert chunks(cut.events) + chunks(resumed.events) == text
    assert resumed.last == CompleteData(agent_session_id=cut.session_header, answer=text)
    assert fake.completions_requested == 2


async def test_supersedes_ends_the_old_execution_and_runs_the_new_one(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(Answer("A slow answer.", ttft_ms=10_000), Answer("A fresh answer."))
    async with aconnect_sse(
        svc.http, "POST", EXECUTE, json=body("First."), headers=headers("k-old")
    ) as old:
        session = old.response.headers[SESSION_HEADER]
        await fake.wait_for_completions(1)
        new = await execute(svc.http, body("Second.", session=session, supersedes="k-old"), "k-new")
        ended = [sse async for sse in old.aiter_sse()]

    assert [(s.event, json.loads(s.data)["code"]) for s in ended] == [("ERROR", "superseded")]
    assert new.session_header == session
    assert new.last == CompleteData(agent_session_id=session, answer="A fresh answer.")
    assert fake.completions[0].client_closed
    replay = await execute(svc.http, body("First."), "k-old")
    assert replay.types == ["ERROR"]


async def test_model_errors_are_classified_and_a_retryable_one_runs_again(
    svc: Served, fake: FakeOpenAI
) -> None:
    fake.script(HttpError(503), Answer("Back again."), HttpError(400))
    failed = await execute(svc.http, body("Hi"), "k-503")
    assert failed.last == ErrorData(
        agent_session_id=failed.session_header,
        code="model_http_503",
        message="the model endpoint answered HTTP 503",
        retryable=True,
    )
    retried = await execute(svc.http, body("Hi"), "k-503", last_event_id="1")
    assert retried.types == ["ANSWER_CHUNK", "ANSWER_CHUNK", "COMPLETE"]
    assert retried.events[0][0] == 2

    refused = await execute(svc.http, body("Hi"), "k-400")
    assert isinstance(refused.last, ErrorData) and not refused.last.retryable
    again = await execute(svc.http, body("Hi"), "k-400")
    assert again.events == refused.events
    assert fake.completions_requested == 3
    status = await svc.http.get(f"/v1/sessions/{refused.session_header}", headers=headers("-"))
    assert status.json()["status"] == "FAILED"


async def test_keys_bodies_and_names_are_checked(svc: Served) -> None:
    for sent in ({}, {"X-API-Key": "wrong"}):
        answer = await svc.http.post(EXECUTE, json=body("Hi"), headers=sent)
        assert (answer.status_code, answer.json()) == (401, {"error": "missing or wrong X-API-Key"})
    assert (await svc.http.get("/v1/sessions/as-1")).status_code == 401
    assert (await svc.http.get("/health")).json() == {"status": "ok"}

    bad = await svc.http.post(
        EXECUTE, content=b'{"conversation_id": 7, "secret": "s3"}', headers=headers("k")
    )
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("invalid body: conversation_id, message")
    assert "s3" not in bad.text
    no_key = {"X-API-Key": API_KEY}
    assert (await svc.http.post(EXECUTE, json=body("Hi"), headers=no_key)).status_code == 400
    unknown = await svc.http.post(
        "/v1/agents/nobody/execute", json=body("Hi"), headers=headers("k")
    )
    assert unknown.status_code == 404
    lost = await svc.http.post(EXECUTE, json=body("Hi", session="as-missing"), headers=headers("k"))
    assert lost.status_code == 404
    assert (await svc.http.get("/v1/sessions/as-missing", headers=headers("-"))).status_code == 404


async def test_heartbeat_comments_keep_a_quiet_stream_alive(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    fake.script(Answer("Done.", ttft_ms=800))
    async with (
        serving(tmp_path / "s.sqlite3", fake, heartbeat_s=0.2) as svc,
        svc.http.stream("POST", EXECUTE, json=body("Hi"), headers=headers("k-hb")) as response,
    ):
        lines = [line async for line in response.aiter_lines() if line]
    assert any(line.startswith(":") for line in lines[: lines.index("event: ANSWER_CHUNK")])


async def test_state_survives_a_restart(tmp_path: Path, fake: FakeOpenAI) -> None:
    db = tmp_path / "s.sqlite3"
    fake.script(Answer("", (TICKET,)), Answer("Opened."))
    async with serving(db, fake) as svc:
        first = await execute(svc.http, body("I want a person."), "k-restart")
    async with serving(db, fake) as svc:
        again = await execute(svc.http, body("I want a person."), "k-restart")
        status = await svc.http.get(f"/v1/sessions/{first.session_header}", headers=headers("-"))
        tickets = await svc.service.store.tickets()
    assert again.events == first.events
    assert status.json()["status"] == "COMPLETED"
    assert len(tickets) == 1 and fake.completions_requested == 2


async def test_acf_client_reads_the_reference_service(svc: Served, fake: FakeOpenAI) -> None:
    fake.script(
        Answer("", (FakeToolCall("search_help", {"query": "password"}),)),
        Answer("Use 'Forgot password'."),
    )
    client = AgentServiceClient(svc.url, API_KEY, ClientTimeouts(first_event_s=10, stream_s=20))
    request = ExecuteRequest(
        conversation_id="conv-9",
        message=CustomerMessage(text="I forgot my password"),
        user_context=UserContext(tenant="acme"),
    )
    try:
        seen = [e async for e in client.stream("support", request, key="k-acf")]
        session = seen[-1].event.agent_session_id
        status = await client.session_status(session)
        health = await client.health()
    finally:
        await client.aclose()
    assert [s.event.type.value for s in seen][:2] == ["TOOL_START", "TOOL_END"]
    assert seen[-1].event == CompleteData(agent_session_id=session, answer="Use 'Forgot password'.")
    assert {s.agent_session_id_header for s in seen} == {session}
    assert [s.id for s in seen] == [str(i) for i in range(1, len(seen) + 1)]
    assert (status.status, health.status) == ("COMPLETED", "ok")
