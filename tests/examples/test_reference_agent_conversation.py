"""The reference agent service's pure conversation rules (examples/agent_service/
conversation.py): what a resumed model round streams, which tool calls wait for a result,
and what a request adds to an agent session's transcript."""

import pytest
from examples.agent_service.conversation import (
    NOT_ANSWERED,
    NOT_RUN,
    ChunkGate,
    Refused,
    opening_messages,
    unanswered_calls,
)
from examples.agent_service.store import Message, SessionRow

from acf.pipelines.agent_service.protocol import AgentSessionState, ExecuteRequest


@pytest.mark.parametrize(
    ("streamed", "answered", "deltas", "sent"),
    [
        ("", "", ["Hel", "lo"], ["Hel", "lo"]),
        # The round had streamed "Hello wo" before the cut: only the rest streams now.
        ("Hello wo", "", ["Hello", " world", "!"], ["", "rld", "!"]),
        # Earlier finished rounds do not count against this one.
        ("First. Hel", "First. ", ["Hello"], ["lo"]),
        # The new answer says something else: nothing more streams (COMPLETE carries it).
        ("Hello wo", "", ["Hi", " there"], ["", ""]),
        ("Hello wo", "", ["Hello", " wa", "rld"], ["", "", ""]),
        # An earlier round already diverged: nothing streams any more.
        ("Other text", "First. ", ["Anything"], [""]),
    ],
)
def test_a_resumed_round_streams_only_past_what_was_sent(
    streamed: str, answered: str, deltas: list[str], sent: list[str]
) -> None:
    gate = ChunkGate.resuming(streamed, answered)
    assert [gate.feed(d) for d in deltas] == sent


def call(call_id: str, name: str = "search_help") -> dict[str, object]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def result(call_id: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


ROUND: Message = {"role": "assistant", "content": None, "tool_calls": [call("a"), call("b")]}


@pytest.mark.parametrize(
    ("transcript", "waiting"),
    [
        ([], []),
        ([{"role": "user", "content": "Hi"}], []),
        ([ROUND], ["a", "b"]),
        ([ROUND, result("b")], ["a"]),
        ([ROUND, result("a"), result("b")], []),
        ([ROUND, {"role": "user", "content": "Hi"}], []),
        ([ROUND, result("a"), result("b"), {"role": "assistant", "content": "Done."}], []),
    ],
)
def test_the_calls_waiting_for_a_result(transcript: list[Message], waiting: list[str]) -> None:
    assert [c.id for c in unanswered_calls(transcript)] == waiting


def request(text: str, answer: tuple[str, str] | None = None) -> ExecuteRequest:
    return ExecuteRequest.model_validate(
        {
            "conversation_id": "c",
            "message": {"text": text},
            "chat_history": [{"role": "assistant", "content": "Hello!"}],
            "user_context": {"tenant": "t"},
            "answer": None if answer is None else {"ask_id": answer[0], "text": answer[1]},
        }
    )


def session(status: AgentSessionState, pending: str | None = None) -> SessionRow:
    return SessionRow("as-1", "support", "c", "t", status, pending, "Which order?")


ASKED: list[Message] = [
    {"role": "user", "content": "Where is it?"},
    {"role": "assistant", "content": None, "tool_calls": [call("ask-1", "ask_customer")]},
]


def test_a_new_agent_session_starts_from_the_chat_history() -> None:
    assert opening_messages(request("Hi"), None, []) == [
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Hi"},
    ]


def test_an_answer_becomes_the_ask_calls_result() -> None:
    awaiting = session(AgentSessionState.AWAITING_USER, "ask-1")
    added = opening_messages(request("1001", ("ask-1", "1001")), awaiting, ASKED)
    assert added == [{"role": "tool", "tool_call_id": "ask-1", "content": "1001"}]


def test_a_new_message_instead_of_the_answer_closes_the_ask() -> None:
    awaiting = session(AgentSessionState.AWAITING_USER, "ask-1")
    added = opening_messages(request("Never mind"), awaiting, ASKED)
    assert added == [
        {"role": "tool", "tool_call_id": "ask-1", "content": NOT_ANSWERED},
        {"role": "user", "content": "Never mind"},
    ]


def test_calls_left_by_a_superseded_execution_are_closed() -> None:
    active = session(AgentSessionState.ACTIVE)
    added = opening_messages(request("Again"), active, [ROUND, result("a")])
    assert added == [
        {"role": "tool", "tool_call_id": "b", "content": NOT_RUN},
        {"role": "user", "content": "Again"},
    ]


@pytest.mark.parametrize(
    ("state", "pending", "answer"),
    [
        (AgentSessionState.AWAITING_USER, "ask-1", "ask-2"),
        (AgentSessionState.COMPLETED, None, "ask-1"),
        (None, None, "ask-1"),
    ],
)
def test_an_answer_without_that_pending_ask_is_refused(
    state: AgentSessionState | None, pending: str | None, answer: str
) -> None:
    row = None if state is None else session(state, pending)
    with pytest.raises(Refused) as refused:
        opening_messages(request("1001", (answer, "1001")), row, ASKED)
    assert refused.value.status == 409
