"""The request a turn sends (``acf.pipelines.agent_service.hydration``): the customer's
text (button replies by title, a replayed dead letter's text), the buttons they pressed,
the user context the agent lists, and the chat history the customer saw (delivered
replies only, windowed by tokens and by count, tool notes, a stored summary first)."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import structlog

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.events import Correlation
from acf.domain.messages import ButtonReply, InboundMessage, MediaRef
from acf.domain.session_key import SessionKey
from acf.pipelines.agent_service.asks import SessionPlan
from acf.pipelines.agent_service.hydration import (
    HISTORY_MODEL,
    SUMMARY_LEAD,
    build_request,
    chat_history,
    customer_message,
    pressed_buttons,
    replayed_text,
    turn_text,
    user_context,
)
from acf.pipelines.agent_service.protocol import (
    Answer,
    Button,
    HistoryItem,
    LinkedIdentity,
    Role,
    UserContext,
)
from acf.pipelines.llm.tokens import load_counter
from acf.ports.dead_letters import DeadLetter

KEY = SessionKey("acme", "support", "+14155550100", "whatsapp")


def message(
    seq: int, text: str | None = None, at_ms: int | None = None, **more: Any
) -> InboundMessage:
    at = at_ms if at_ms is not None else seq * 10_000
    return InboundMessage(f"m{seq}", "s1", KEY, seq, f"p{seq}", at, text=text, **more)


def reply(text: str, at_ms: int, status: str = "delivered", **more: Any) -> dict[str, Any]:
    return {"text": text, "buttons": [], "media": [], "at_ms": at_ms, "status": status, **more}


@dataclass
class FakeContext:
    """What hydration reads of a TurnContext."""

    messages: list[InboundMessage] = field(default_factory=list)
    history: list[InboundMessage] = field(default_factory=list)
    replies_history: list[Mapping[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    replay: DeadLetter | None = None
    correlation: Correlation = field(
        default_factory=lambda: Correlation("acme", "0" * 31 + "1", "s1", "t1", "g1")
    )
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))
    linked: dict[str, str] = field(default_factory=dict)

    async def linked_identities(self) -> Mapping[str, str]:
        return self.linked


def fields(**changes: Any) -> AgentServicePipelineFields:
    return AgentServicePipelineFields.model_validate(
        {"kind": "agent_service", "base_url": "http://127.0.0.1:9", "profile": "support", **changes}
    )


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([message(1, "Hello")], "Hello"),
        ([message(1, " Hello "), message(2, "  "), message(3, "order 7")], "Hello\norder 7"),
        # A button reply reads as its title (a number that chose it, or a provider's echo
        # of the title, is not repeated).
        ([message(1, "2", button=ButtonReply("option-2", "Tomorrow"))], "Tomorrow"),
        ([message(1, None, button=ButtonReply("yes"))], "yes"),
        (
            [message(1, "look", media=(MediaRef("r1", "image/png", "my parcel"),))],
            "look\n[the customer sent image/png: my parcel]",
        ),
        ([], ""),
    ],
)
def test_the_turn_text(messages: list[InboundMessage], text: str) -> None:
    assert turn_text(messages) == text


def test_the_buttons_pressed_are_those_of_the_last_reply_seen() -> None:
    shown = reply("Which day?", 5, buttons=[{"id": "option-1", "title": "Today"}, {"id": "o2"}])
    pressed = [message(1, "Today", button=ButtonReply("option-1", "Today"))]
    assert pressed_buttons(pressed, [reply("hi", 1), shown]) == [
        Button(id="option-1", title="Today"),
        Button(id="o2", title="o2"),
    ]
    assert pressed_buttons([message(1, "Today")], [shown]) is None  # typed, not pressed
    assert pressed_buttons(pressed, []) is None
    assert pressed_buttons(pressed, [reply("no buttons", 5)]) is None


def test_a_replay_sends_the_text_of_the_request_that_failed() -> None:
    letter = DeadLetter(
        tenant="acme",
        dead_letter_id="d1",
        session_id="s1",
        agent="support",
        turn_id="t0",
        group_id="g0",
        trace_id="0" * 31 + "1",
        pipeline="agent_service",
        error="HTTP 503",
        attempts=4,
        created_at_ms=1,
        request={"message": {"text": "Cancel order 7"}, "conversation_id": "s1"},
    )
    ctx = FakeContext(replay=letter)
    assert customer_message(ctx).text == "Cancel order 7"  # type: ignore[arg-type]
    broken = FakeContext(replay=replace(letter, request={}))
    assert customer_message(broken).text == ""  # type: ignore[arg-type]
    # A turn that ended FAILED recorded its messages' texts (dead_letter_units).
    failed = FakeContext(replay=replace(letter, request={"messages": ["Cancel", "order 7"]}))
    assert customer_message(failed).text == "Cancel\norder 7"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        ({"message": {"text": "Cancel order 7"}, "messages": ["ignored"]}, "Cancel order 7"),
        ({"messages": ["Cancel", "order 7"]}, "Cancel\norder 7"),
        ({"messages": ["", "order 7", "  ", 7]}, "order 7"),  # media-only and odd entries
        ({"messages": "Cancel order 7"}, ""),
        ({"message": {"text": None}}, ""),
        ({}, ""),
    ],
)
def test_the_replayed_text(request_: dict[str, Any], text: str) -> None:
    assert replayed_text(request_) == text


@pytest.mark.parametrize(
    ("listed", "locale", "expected"),
    [
        (  # the default: the customer's other addresses stay with acf
            None,
            "de-CH",
            UserContext(
                tenant="acme", customer_id="+14155550100", channel="whatsapp", locale="de-CH"
            ),
        ),
        (
            ["tenant", "linked_identities"],
            None,
            UserContext(
                tenant="acme",
                linked_identities=[
                    LinkedIdentity(channel="email", address="ann@example.com"),
                    LinkedIdentity(channel="web", address="w-7"),
                ],
            ),
        ),
        (["tenant"], "de-CH", UserContext(tenant="acme")),
        (["channel", "locale"], None, UserContext(tenant="acme", channel="whatsapp")),
    ],
)
async def test_the_user_context_holds_what_the_agent_lists(
    listed: list[str] | None, locale: str | None, expected: UserContext
) -> None:
    changes: dict[str, Any] = {"locale": locale}
    if listed is not None:
        changes["user_context"] = listed
    linked = {"web": "w-7", "whatsapp": "+14155550100", "email": "ann@example.com"}
    ctx = FakeContext(messages=[message(1, "hi")], linked=linked)
    assert await user_context(ctx, fields(**changes)) == expected  # type: ignore[arg-type]


async def test_no_linked_identity_is_none() -> None:
    ctx = FakeContext(messages=[message(1, "hi")])
    listed = fields(user_context=["tenant", "linked_identities"])
    got = await user_context(ctx, listed)  # type: ignore[arg-type]
    assert got.linked_identities is None


def conversation() -> FakeContext:
    """Three exchanges; the second reply failed to reach the customer."""
    return FakeContext(
        messages=[message(9, "and now?")],
        history=[message(1, "hi"), message(3, "order 7?"), message(5, "thanks")],
        replies_history=[
            reply("Hello!", 12_000),
            reply("It left today.", 32_000, status="failed"),
            reply("You're welcome.", 52_000),
        ],
        state={
            "data": {
                "agent_service": {
                    "tool_log": [
                        {
                            "at_ms": 31_000,
                            "tool": "track",
                            "args": {"order": "7"},
                            "outcome": "ok",
                            "summary": "in transit",
                        }
                    ]
                }
            }
        },
    )


async def test_the_chat_history_is_what_the_customer_saw() -> None:
    ctx = conversation()
    log = ctx.state["data"]["agent_service"]["tool_log"]
    got = await chat_history(ctx, fields(), log)  # type: ignore[arg-type]
    assert got == [
        HistoryItem(role=Role.USER, content="hi"),
        HistoryItem(role=Role.ASSISTANT, content="Hello!"),
        HistoryItem(role=Role.USER, content="order 7?"),
        HistoryItem(
            role=Role.ASSISTANT,
            content='[earlier tool call] track(order="7") -> ok: in transit',
        ),
        HistoryItem(role=Role.USER, content="thanks"),
        HistoryItem(role=Role.ASSISTANT, content="You're welcome."),
    ]
    # The last N messages, and none at all for 0.
    last = await chat_history(ctx, fields(history_messages=2), log)  # type: ignore[arg-type]
    assert [i.content for i in last] == ["thanks", "You're welcome."]
    assert await chat_history(ctx, fields(history_messages=0), log) == []  # type: ignore[arg-type]
    # A token budget keeps the newest messages that fit (a suffix), the summary's space
    # aside.
    counter = await load_counter(HISTORY_MODEL)
    for budget in (20, 30, 45):
        tight = await chat_history(ctx, fields(history_tokens=budget), log)  # type: ignore[arg-type]
        assert 0 < len(tight) < len(got) and tight == got[-len(tight) :]
        assert sum(counter.message(i.model_dump(mode="json")) for i in tight) <= budget


async def test_a_stored_summary_comes_first_and_none_is_ever_written() -> None:
    ctx = conversation()
    ctx.state["data"]["llm"] = {
        "summary": {"text": "The customer asked about order 7.", "through": [12_000, 2, 1, 0, "x"]}
    }
    got = await chat_history(ctx, fields(), [])  # type: ignore[arg-type]
    assert got[0] == HistoryItem(
        role=Role.SYSTEM, content=SUMMARY_LEAD + "The customer asked about order 7."
    )
    assert [i.content for i in got[1:]] == ["order 7?\nthanks", "You're welcome."]


async def test_the_request_goes_where_the_plan_says() -> None:
    ctx = conversation()
    f = fields(locale="en")
    fresh = await build_request(ctx, f, SessionPlan(None, None), [])  # type: ignore[arg-type]
    assert fresh.conversation_id == "s1" and fresh.agent_session_id is None
    assert fresh.message.text == "and now?" and fresh.answer is None
    assert fresh.user_context.locale == "en" and fresh.supersedes is None
    answering = await build_request(
        ctx,  # type: ignore[arg-type]
        f,
        SessionPlan(None, "as-4", answer_to="ask-2"),
        [],
    )
    assert answering.agent_session_id == "as-4"
    assert answering.answer == Answer(ask_id="ask-2", text="and now?")
    assert answering.message.text == "and now?"  # the message is the turn's text, too
