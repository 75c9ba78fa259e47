"""``FakeAgentService`` speaks the agent service protocol over real HTTP: every step type,
resumes after a cut, cancellation on disconnect, tools run once per key, the error
statuses, agent sessions, health and keepalives."""

import asyncio
import ssl
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from acf.pipelines.agent_service.client import AgentServiceClient, ClientTimeouts
from acf.pipelines.agent_service.execution import run_execution
from acf.pipelines.agent_service.protocol import (
    AgentEvent,
    AgentSessionState,
    AnswerChunkData,
    AskUserData,
    CompleteData,
    CustomerMessage,
    ErrorData,
    ExecuteRequest,
    HealthBody,
    SessionStatusBody,
    SideEffect,
    ThoughtData,
    ToolEndData,
    ToolStartData,
    UserContext,
    parse_event,
)
from acf.pipelines.llm.breaker import CircuitBreaker
from acf.testing import VirtualClock
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_agent_steps import (
    Ask,
    Chunks,
    Complete,
    Cut,
    Error,
    Reject,
    Sleep,
    Think,
    Tool,
)

BODY: dict[str, Any] = {
    "conversation_id": "s-1",
    "agent_session_id": None,
    "message": {"text": "where is my parcel?"},
    "chat_history": [{"role": "user", "content": "hi"}],
    "user_context": {"tenant": "acme", "channel": "web"},
}


SSL = ssl.create_default_context()
"""Built once: each client would build its own (loopback is plain HTTP anyway)."""


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10, verify=SSL)


@dataclass
class Answered:
    status: int
    session: str | None
    ids: list[str] = field(default_factory=list)
    events: list[AgentEvent] = field(default_factory=list)
    cut: bool = False
    """The connection ended without a final event (dropped, or a clean end)."""

    @property
    def types(self) -> list[str]:
        return [e.type.value for e in self.events]


@pytest.fixture
async def svc() -> AsyncIterator[FakeAgentService]:
    async with FakeAgentService() as service:
        yield service


def base(target: FakeAgentService | str) -> str:
    return target if isinstance(target, str) else target.base_url


async def execute(
    svc: FakeAgentService | str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = "k1",
    headers: dict[str, str] | None = None,
    stop_after: str | None = None,
) -> Answered:
    """One execute request; reads events until the stream ends (or ``stop_after``, then
    closes the connection)."""
    sent = dict(headers or {}) | ({"Idempotency-Key": key} if key else {})
    url = f"{base(svc)}/v1/agents/support/execute"
    async with (
        client() as http,
        aconnect_sse(http, "POST", url, json=body or BODY, headers=sent) as source,
    ):
        response = source.response
        answered = Answered(response.status_code, response.headers.get("X-Agent-Session-Id"))
        if response.status_code != 200:
            await response.aread()
            return answered
        try:
            async for sse in source.aiter_sse():
                answered.ids.append(sse.id)
                answered.events.append(parse_event(sse.event, sse.data))
                if sse.event == stop_after:
                    return answered
        except httpx.RemoteProtocolError:
            pass
        answered.cut = answered.types[-1:] not in (["COMPLETE"], ["ASK_USER"], ["ERROR"])
        return answered


async def refused(
    svc: FakeAgentService, content: bytes | None = None, **kwargs: Any
) -> httpx.Response:
    """A non-streamed call, for error statuses."""
    headers = {"Idempotency-Key": "k1"} | kwargs.pop("headers", {})
    async with client() as http:
        if content is not None:
            return await http.post(
                f"{svc.base_url}/v1/agents/support/execute", content=content, headers=headers
            )
        body = kwargs.pop("body", BODY)
        return await http.post(
            f"{svc.base_url}/v1/agents/support/execute", json=body, headers=headers
        )


async def get(svc: FakeAgentService, path: str, **headers: str) -> httpx.Response:
    async with client() as http:
        return await http.get(f"{svc.base_url}{path}", headers=headers)


@pytest.mark.parametrize(
    ("text", "parts", "pieces"),
    [
        ("abcdef", 3, ["ab", "cd", "ef"]),
        ("abcdefg", 3, ["ab", "cd", "efg"]),
        ("ab", 3, ["a", "b"]),
        ("", 3, []),
        ("hello", 1, ["hello"]),
    ],
)
def test_chunks_cut_the_text_into_nonempty_pieces(
    text: str, parts: int, pieces: Sequence[str]
) -> None:
    assert Chunks(text, parts).pieces() == pieces


async def test_the_default_script_echoes_in_three_chunks(svc: FakeAgentService) -> None:
    answered = await execute(svc, headers={"traceparent": "00-abc-def-01"})
    assert answered.status == 200 and answered.session == "as-1"
    assert answered.ids == ["1", "2", "3", "4"]
    assert answered.types == ["ANSWER_CHUNK"] * 3 + ["COMPLETE"]
    chunks = [e.text for e in answered.events if isinstance(e, AnswerChunkData)]
    assert "".join(chunks) == "You said: where is my parcel?"
    assert answered.events[-1] == CompleteData(agent_session_id="as-1", answer="".join(chunks))
    assert {e.agent_session_id for e in answered.events} == {"as-1"}
    (recorded,) = svc.requests
    assert recorded.profile == "support" and recorded.key == "k1" and recorded.status == 200
    assert recorded.body == ExecuteRequest.model_validate(BODY)
    assert recorded.headers["traceparent"] == "00-abc-def-01"
    assert svc.executions["k1"].finished and not svc.executions["k1"].cancelled


async def test_every_step_becomes_its_events(svc: FakeAgentService) -> None:
    svc.enqueue(
        [
            Think("Looking it up"),
            Tool("track", {"id": "P1"}, status_text="Checking…", ok=False, summary="no scan"),
            Tool("reship", side_effect=SideEffect.REVERSIBLE, seconds=0.01),
            Chunks("It is late.", parts=2, interval_s=0.01),
            Complete(),
            Think("never sent"),
        ]
    )
    answered = await execute(svc)
    assert answered.events == [
        ThoughtData(agent_session_id="as-1", text="Looking it up"),
        ToolStartData(
            agent_session_id="as-1", tool="track", args={"id": "P1"}, status_text="Checking…"
        ),
        ToolEndData(agent_session_id="as-1", tool="track", ok=False, summary="no scan"),
        ToolStartData(agent_session_id="as-1", tool="reship", side_effect="reversible"),
        ToolEndData(agent_session_id="as-1", tool="reship", ok=True),
        AnswerChunkData(agent_session_id="as-1", text="It is"),
        AnswerChunkData(agent_session_id="as-1", text=" late."),
        CompleteData(agent_session_id="as-1", answer="It is late."),
    ]
    assert svc.tool_runs == [("k1", "track", {"id": "P1"}), ("k1", "reship", {})]
    assert svc.session("as-1").status is AgentSessionState.COMPLETED


async def test_an_ask_waits_for_its_answer(svc: FakeAgentService) -> None:
    svc.enqueue([Ask("Which order?", options=["A", "B"])])
    svc.enqueue([Ask("Sure?", ask_id="q2")])
    asked = await execute(svc)
    ask = asked.events[-1]
    assert ask == AskUserData(
        agent_session_id="as-1", ask_id="ask-1-0", question="Which order?", options=["A", "B"]
    )
    status = SessionStatusBody.model_validate_json((await get(svc, "/v1/sessions/as-1")).content)
    assert status == SessionStatusBody(
        agent_session_id="as-1",
        status=AgentSessionState.AWAITING_USER,
        profile="support",
        pending_ask_id="ask-1-0",
    )
    follow = BODY | {"agent_session_id": "as-1", "message": {"text": "A"}}
    wrong = await refused(
        svc,
        body=follow | {"answer": {"ask_id": "other", "text": "A"}},
        headers={"Idempotency-Key": "k9"},
    )
    assert wrong.status_code == 409 and "pending" in wrong.json()["error"]
    answer = follow | {"answer": {"ask_id": "ask-1-0", "text": "A"}}
    again = await execute(svc, answer, key="k2")
    assert again.session == "as-1" and again.types == ["ASK_USER"]
    assert svc.session("as-1").pending_ask_id == "q2"
    answered = await execute(svc, follow | {"answer": {"ask_id": "q2", "text": "yes"}}, key="k3")
    assert answered.events[-1] == CompleteData(agent_session_id="as-1", answer="You said: A")
    late = await refused(svc, body=answer, headers={"Idempotency-Key": "k4"})
    assert late.status_code == 409  # nothing is pending any more


async def test_a_corrected_answer_supersedes_the_answer_being_worked_on(
    svc: FakeAgentService,
) -> None:
    svc.enqueue([Ask("Which order?")])
    svc.enqueue([Think("checking"), Sleep(5.0), Complete("too late")])
    await execute(svc)
    follow = BODY | {"agent_session_id": "as-1", "answer": {"ask_id": "ask-1-0", "text": "A"}}
    first = await execute(svc, follow, key="k2", stop_after="THOUGHT")
    assert first.types == ["THOUGHT"]
    corrected = follow | {"message": {"text": "B"}, "answer": {"ask_id": "ask-1-0", "text": "B"}}
    again = await execute(svc, corrected | {"supersedes": "k2"}, key="k3")
    assert again.status == 200 and again.events[-1] == CompleteData(
        agent_session_id="as-1", answer="You said: B"
    )
    assert svc.executions["k2"].superseded_by == "k3"


async def test_an_answer_without_a_pending_ask_is_a_conflict(svc: FakeAgentService) -> None:
    no_session = await refused(svc, body=BODY | {"answer": {"ask_id": "a", "text": "x"}})
    assert no_session.status_code == 409
    await execute(svc)
    answer = BODY | {"agent_session_id": "as-1", "answer": {"ask_id": "a", "text": "x"}}
    assert (await refused(svc, body=answer, headers={"Idempotency-Key": "k2"})).status_code == 409
    unknown = await refused(
        svc, body=BODY | {"agent_session_id": "as-9"}, headers={"Idempotency-Key": "k3"}
    )
    assert unknown.status_code == 404 and unknown.json() == {"error": "unknown agent session"}
    assert sorted(svc.executions) == ["k1"]


async def test_an_error_fails_the_agent_session(svc: FakeAgentService) -> None:
    svc.enqueue([Sleep(0.05), Error("busy", "Try later", retryable=True)])
    answered = await execute(svc)
    assert answered.events == [
        ErrorData(agent_session_id="as-1", code="busy", message="Try later", retryable=True)
    ]
    assert svc.session("as-1").status is AgentSessionState.FAILED


async def test_a_cut_stream_resumes_after_the_last_event_id(svc: FakeAgentService) -> None:
    svc.enqueue([Chunks("one two three"), Cut(), Sleep(0.05), Think("still going"), Complete()])
    first = await execute(svc)
    assert first.cut and first.ids == ["1", "2", "3"]
    execution = svc.executions["k1"]
    await execution.wait_ended()
    assert execution.finished and not execution.cancelled  # it went on without a client
    resumed = await execute(svc, headers={"Last-Event-ID": "3"})
    assert resumed.ids == ["4", "5"] and resumed.types == ["THOUGHT", "COMPLETE"]
    assert resumed.events[-1] == CompleteData(agent_session_id="as-1", answer="one two three")
    replayed = await execute(svc)  # no Last-Event-ID: from the start, and no second cut
    assert replayed.ids == ["1", "2", "3", "4", "5"] and not replayed.cut
    assert execution.runs == 1 and [r.last_event_id for r in svc.requests] == [None, "3", None]


async def test_a_cut_before_any_event_then_a_replay(svc: FakeAgentService) -> None:
    svc.enqueue([Cut(), Chunks("abc"), Complete()])
    first = await execute(svc)
    assert first.status == 200 and first.cut and first.ids == []
    again = await execute(svc)
    assert again.ids == ["1", "2", "3", "4"] and again.events[-1] == CompleteData(
        agent_session_id="as-1", answer="abc"
    )


async def test_a_script_without_a_final_step_just_ends(svc: FakeAgentService) -> None:
    svc.enqueue([Think("hmm")])
    answered = await execute(svc)
    assert answered.cut and answered.types == ["THOUGHT"]


async def test_a_disconnect_cancels_and_no_side_effect_starts_after_it(
    svc: FakeAgentService,
) -> None:
    svc.enqueue([Think("refunding"), Sleep(0.3), Tool("refund", side_effect="irreversible")])
    await execute(svc, stop_after="THOUGHT")
    execution = svc.executions["k1"]
    await execution.wait_ended()
    assert execution.cancelled and not execution.finished
    await asyncio.sleep(0.4)
    assert svc.tool_runs == [] and [e.event.type for e in execution.events] == ["THOUGHT"]
    resumed = await execute(svc, headers={"Last-Event-ID": "1"})  # the same key runs it again
    assert resumed.ids == ["2", "3"] and resumed.types == ["TOOL_START", "TOOL_END"]
    assert svc.tool_runs == [("k1", "refund", {})] and execution.runs == 2


async def test_a_disconnect_does_not_cancel_while_another_connection_reads(
    svc: FakeAgentService,
) -> None:
    svc.enqueue([Think("a"), Sleep(0.3), Complete("done")])
    reader = asyncio.create_task(execute(svc))
    await svc.wait_for_requests(1)
    await asyncio.sleep(0.05)
    left = await execute(svc, stop_after="THOUGHT")
    assert left.types == ["THOUGHT"]
    assert (await reader).types == ["THOUGHT", "COMPLETE"]
    assert not svc.executions["k1"].cancelled and svc.executions["k1"].runs == 1


async def test_the_same_key_never_runs_a_tool_twice(svc: FakeAgentService) -> None:
    refund = Tool("refund", {"amount": 5}, seconds=0.3)
    svc.enqueue([refund, Chunks("Refunded."), Complete()])
    started = await execute(svc, stop_after="TOOL_START")
    assert started.events[0] == ToolStartData(
        agent_session_id="as-1", tool="refund", args={"amount": 5}
    )
    execution = svc.executions["k1"]
    await execution.wait_ended()
    assert execution.cancelled and svc.tool_runs == [("k1", "refund", {"amount": 5})]
    again = await execute(svc)
    assert again.types == ["TOOL_START", "TOOL_END"] + ["ANSWER_CHUNK"] * 3 + ["COMPLETE"]
    assert again.ids == [str(n) for n in range(1, 7)]
    assert svc.tool_runs == [("k1", "refund", {"amount": 5})]
    assert execution.tool_runs == svc.tool_runs and execution.finished


async def test_supersedes_cancels_the_running_execution(svc: FakeAgentService) -> None:
    svc.enqueue([Think("working"), Sleep(5), Complete()])
    old = asyncio.create_task(execute(svc))
    await svc.wait_for_requests(1)
    await asyncio.sleep(0.05)
    new = await execute(svc, BODY | {"supersedes": "k1"}, key="k2")
    assert new.types[-1] == "COMPLETE"
    cut = await old
    assert cut.cut and cut.types == ["THOUGHT"]
    assert svc.executions["k1"].cancelled and svc.executions["k1"].superseded_by == "k2"
    assert svc.executions["k2"].supersedes == "k1"


async def test_the_api_key_is_checked() -> None:
    async with FakeAgentService("sesame") as svc:
        assert (await refused(svc)).status_code == 401
        wrong = await refused(svc, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and "sesame" not in wrong.text
        assert (await get(svc, "/v1/sessions/as-1")).status_code == 401
        assert (await execute(svc, headers={"X-API-Key": "sesame"})).status == 200
        assert [r.status for r in svc.requests] == [401, 401, 200]
        assert "sesame" not in repr(svc.requests)
        assert (await get(svc, "/health")).status_code == 200  # no key needed


@pytest.mark.parametrize(
    ("content", "headers", "error"),
    [
        (b"not json", {}, "invalid or missing"),
        (b'{"conversation_id": "s"}', {}, "message"),
        (None, {"Idempotency-Key": ""}, "Idempotency-Key"),
        (None, {"Last-Event-ID": "x"}, "Last-Event-ID"),
    ],
)
async def test_a_bad_request_is_400_json(
    svc: FakeAgentService, content: bytes | None, headers: dict[str, str], error: str
) -> None:
    response = await refused(svc, content, headers=headers)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert svc.executions == {}


async def test_rejects_answer_their_status_then_the_stream(svc: FakeAgentService) -> None:
    svc.enqueue([Reject(503, times=2, retry_after_s=1.5), Reject(500), Complete("done")])
    first, second, third = [await refused(svc) for _ in range(3)]
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 500]
    assert first.headers["Retry-After"] == "1.5" and "Retry-After" not in third.headers
    assert first.json() == {"error": "rejected by the fake agent service"}
    answered = await execute(svc)
    assert answered.types == ["COMPLETE"] and svc.executions["k1"].requests == 4
    assert (await execute(svc, key="k2")).types[-1] == "COMPLETE"  # a new key: the echo


async def test_a_down_service_answers_503(svc: FakeAgentService) -> None:
    svc.set_down(True)
    response = await refused(svc)
    assert response.status_code == 503 and "down" in response.json()["error"]
    svc.set_down(False)
    assert (await execute(svc)).types[-1] == "COMPLETE"


@pytest.mark.parametrize(("status", "code"), [("ok", 200), ("degraded", 200), ("down", 503)])
async def test_health(svc: FakeAgentService, status: Any, code: int) -> None:
    svc.set_health(status)
    response = await get(svc, "/health")
    assert response.status_code == code
    assert HealthBody.model_validate_json(response.content) == HealthBody(status=status)


async def test_sessions_endpoint(svc: FakeAgentService) -> None:
    await execute(svc)
    await execute(svc, BODY | {"agent_session_id": "as-1"}, key="k2")
    await execute(svc, key="k3")
    ok = await get(svc, "/v1/sessions/as-1")
    assert ok.json() == {"agent_session_id": "as-1", "status": "COMPLETED", "profile": "support"}
    assert sorted(svc.sessions) == ["as-1", "as-2"]
    missing = await get(svc, "/v1/sessions/as-7")
    assert missing.status_code == 404 and "error" in missing.json()
    assert (await get(svc, "/v1/nothing")).status_code == 404


async def test_keepalive_comments_fill_silences() -> None:
    async with (
        FakeAgentService(heartbeat_s=0.05) as svc,
        client() as http,
    ):
        svc.enqueue([Sleep(0.3), Complete("done")])
        url = f"{svc.base_url}/v1/agents/support/execute"
        headers = {"Idempotency-Key": "k1"}
        async with http.stream("POST", url, json=BODY, headers=headers) as response:
            lines = [line async for line in response.aiter_lines() if line]
    assert lines.count(": keepalive") >= 3
    data = 'data: {"agent_session_id":"as-1","answer":"done"}'
    assert lines[-3:] == ["id: 1", "event: COMPLETE", data]


async def test_scripts_are_chosen_per_request_after_the_queue(svc: FakeAgentService) -> None:
    seen: list[tuple[str, str]] = []

    def by_text(request: ExecuteRequest, profile: str) -> list[Any]:
        seen.append((request.message.text, profile))
        return [Complete(request.message.text.upper())]

    svc.script(by_text)
    svc.enqueue([Complete("queued")])
    first = await execute(svc)
    second = await execute(svc, key="k2")
    assert [first.events[-1], second.events[-1]] == [
        CompleteData(agent_session_id="as-1", answer="queued"),
        CompleteData(agent_session_id="as-2", answer="WHERE IS MY PARCEL?"),
    ]
    assert seen == [("where is my parcel?", "support")]


async def test_latency_delays_the_first_and_later_events() -> None:
    async with FakeAgentService(first_event_s=0.2, event_gap_s=0.05) as svc:
        began = time.monotonic()
        answered = await execute(svc)
        took = time.monotonic() - began
    assert answered.types[-1] == "COMPLETE" and 0.2 + 3 * 0.05 <= took < 5


async def test_it_runs_as_a_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acf.testing.fake_agent_service_server",
        "--port",
        "0",
        "--first-event-ms",
        "20",
        "--chunk-ms",
        "5",
        "--think",
        "--tool",
        "lookup",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        answered = await execute(base_url)
        assert answered.types[:-1] == ["THOUGHT", "TOOL_START", "TOOL_END"] + ["ANSWER_CHUNK"] * 3
        assert answered.events[-1] == CompleteData(
            agent_session_id="as-1", answer="You said: where is my parcel?"
        )
    finally:
        process.terminate()
        _, err = await process.communicate()
    assert b"RuntimeWarning" not in err


async def test_a_retryable_error_runs_again_from_the_step_after_it_with_later_ids() -> None:
    class Jump(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            self.advance(round(seconds * 1000))

    async with FakeAgentService() as svc:
        svc.enqueue(
            [
                Chunks("Hal", parts=1),
                Error("busy", "try again", retryable=True),
                Chunks("Hello", parts=1),
                Complete(),
            ]
        )
        client = AgentServiceClient(svc.base_url, None, ClientTimeouts(2, 5, 10))
        clock = Jump()
        seen: list[str] = []

        async def on_event(streamed: Any) -> None:
            seen.append(streamed.id)

        try:
            result = await run_execution(
                client,
                "support",
                ExecuteRequest(
                    conversation_id="c-1",
                    message=CustomerMessage(text="hi"),
                    user_context=UserContext(tenant="t"),
                ),
                key="k-1",
                supersedes=None,
                clock=clock,
                deadline_ms=clock.now_ms() + 30_000,
                retries=3,
                breaker=CircuitBreaker(),
                on_event=on_event,
                traceparent=None,
            )
        finally:
            await client.aclose()
    assert result.final.type.value == "COMPLETE" and result.attempts == 2
    assert seen == ["1", "3"]
    assert [r.last_event_id for r in svc.requests] == [None, "2"]
    assert svc.executions["k-1"].runs == 2
