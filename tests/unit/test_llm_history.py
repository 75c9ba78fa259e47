"""The history the LLM pipeline shows the model: what the customer saw, in order, within a
token budget, with a rolling summary refreshed at most every N turns."""

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from acf.domain.messages import ButtonReply, InboundMessage, MediaRef
from acf.domain.session_key import SessionKey
from acf.domain.state import merge_patch
from acf.pipelines.llm.history import HistoryWindow, history_window, timeline
from acf.pipelines.llm.tokens import counter_for

KEY = SessionKey("acme", "support", "+14155550100", "web")
MODEL = "llama3.1:8b"  # an encoding nobody knows: the estimate, the same on every machine
WORDS = "my order of the blue jacket has not arrived yet and I would like to know why".split()


@dataclass
class FakeContext:
    """What ``history_window`` reads of a TurnContext (it has no clock to read)."""

    history: list[InboundMessage] = field(default_factory=list)
    replies_history: list[Mapping[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))


def message(seq: int, at_ms: int, text: str | None = None, **more: Any) -> InboundMessage:
    return InboundMessage(f"m{seq}", "s1", KEY, seq, f"p{seq}", at_ms, text=text, **more)


def reply(text: str, at_ms: int | None = None, turn: str | None = None, **more: Any) -> dict:
    out: dict[str, Any] = {"text": text, "buttons": [], "media": [], "delay_ms": 0, **more}
    if at_ms is not None:
        out["at_ms"] = at_ms
    if turn is not None:
        out["turn_id"] = turn
    return out


class Summariser:
    """Stands in for the memoised model call: records each request, answers a summary."""

    def __init__(self, answer: str | None = None) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.answer = answer

    async def __call__(self, request: list[dict[str, Any]]) -> str:
        self.requests.append(request)
        return self.answer if self.answer is not None else f"summary number {len(self.requests)}"


async def window(
    ctx: FakeContext, budget: int = 4000, every: int = 3, summarise: Summariser | None = None
) -> HistoryWindow:
    return await history_window(
        ctx,  # type: ignore[arg-type]
        budget_tokens=budget,
        model=MODEL,
        summarise=summarise or Summariser(),
        summary_every_turns=every,
    )


def sentence(n: int) -> str:
    return f"({n}) " + " ".join(WORDS[(n + i) % len(WORDS)] for i in range(12))


def conversation(turns: int, start: int = 0) -> FakeContext:
    """``turns`` turns: a customer message, then a committed reply, 10 s apart."""
    ctx = FakeContext()
    add_turns(ctx, start, turns)
    return ctx


def add_turns(ctx: FakeContext, start: int, count: int) -> None:
    for n in range(start, start + count):
        ctx.history.append(message(n + 1, 10_000 * n, f"customer {sentence(n)}"))
        ctx.replies_history.append(reply(f"agent {sentence(n)}", 10_000 * n + 5_000, f"t{n}"))


async def test_roles_order_and_what_the_customer_pressed_or_sent() -> None:
    ctx = FakeContext(
        history=[
            message(1, 1_000, "Where is my order?"),
            message(2, 3_000, button=ButtonReply("yes", "Yes")),
            message(3, 3_500, media=(MediaRef("mid-7", "image/jpeg", "the box"),)),
        ],
        replies_history=[
            reply("Shall I look it up?", 2_000, "t1", buttons=[{"id": "yes", "title": "Yes"}]),
            reply("It ships today.", 4_000, "t2", media=["https://cdn.example/x/label.pdf?sig=s"]),
        ],
    )
    got = await window(ctx)
    assert got.messages == (
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": "Shall I look it up?\n[buttons: Yes]"},
        {"role": "user", "content": "Yes\n[attachment: image/jpeg the box]"},
        {"role": "assistant", "content": "It ships today.\n[attachment: label.pdf]"},
    )
    assert got.summary is None and got.state_patch is None
    counter = counter_for(MODEL)
    assert got.tokens == sum(counter.message(m) for m in got.messages)


async def test_interleaved_by_time_and_same_role_runs_merged() -> None:
    ctx = FakeContext(
        history=[
            message(1, 1_000, "hi"),
            message(2, 1_200, "my order R-1"),
            message(3, 9_000, "thanks"),
        ],
        # Listed out of time order on purpose; two parts of one paced reply.
        replies_history=[
            reply("Let me check.", 5_000, "t1"),
            reply("It left the warehouse.", 5_000, "t1"),
            reply("Anything else?", 9_500, "t2"),
        ],
    )
    got = await window(ctx)
    assert [m["role"] for m in got.messages] == ["user", "assistant", "user", "assistant"]
    assert got.messages[0]["content"] == "hi\nmy order R-1"
    assert got.messages[1]["content"] == "Let me check.\n\nIt left the warehouse."
    # At one instant a message sorts before a reply: a reply commits after what it answers.
    ctx.history.append(message(4, 9_500, "one more"))
    got = await window(ctx)
    assert got.messages[-2:] == (
        {"role": "user", "content": "thanks\none more"},
        {"role": "assistant", "content": "Anything else?"},
    )


async def test_earlier_tool_calls_are_notes_not_tool_messages() -> None:
    log = [
        {
            "at_ms": 2_500,
            "tool": "refund_order",
            "args": {"order_id": "R-1", "amount": 20},
            "outcome": "ok",
            "summary": "refund R-0001",
        },
        {"at_ms": 2_600, "tool": "create_ticket", "args": {}, "outcome": "refused"},
        {"tool": "no_time"},
        "garbage",
    ]
    ctx = FakeContext(
        history=[message(1, 1_000, "refund R-1 please")],
        replies_history=[reply("Done: refund R-0001.", 3_000, "t1")],
        state={"data": {"llm": {"tool_log": log}}},
    )
    got = await window(ctx)
    assert got.messages == (
        {"role": "user", "content": "refund R-1 please"},
        {
            "role": "assistant",
            "content": '[earlier tool call] refund_order(amount=20, order_id="R-1") -> ok: '
            "refund R-0001\n\n[earlier tool call] create_ticket() -> refused\n\n"
            "Done: refund R-0001.",
        },
    )
    assert all(set(m) == {"role", "content"} for m in got.messages)


async def test_missing_keys_undelivered_parts_and_untimed_replies() -> None:
    ctx = FakeContext(
        history=[message(1, 1_000, "a"), message(2, 5_000, "b"), message(3, 8_000, "c")],
        replies_history=[
            {"text": "first"},  # no time, no turn: before the next timed reply
            {"text": "second", "at_ms": 6_000},
            {"text": "third", "status": "delivered"},  # no time: right after "second"
            {"text": "never seen", "at_ms": 6_500, "status": "cut"},
            {"text": "failed", "at_ms": 6_600, "status": "failed"},
            {"buttons": None, "media": None},  # nothing to show
            "not a mapping",  # type: ignore[list-item]
        ],
        state={"data": "not a mapping"},
    )
    got = await window(ctx)
    assert [m["content"] for m in got.messages] == [
        "a\nb",
        "first\n\nsecond\n\nthird",
        "c",
    ]
    # No reply has a time: they follow the history's messages, in their order.
    untimed = FakeContext([message(1, 1_000, "a")], [{"text": "x"}, {"text": "y"}])
    assert [m["content"] for m in (await window(untimed)).messages] == ["a", "x\n\ny"]
    assert (await window(FakeContext())).messages == ()


async def test_a_long_session_stays_within_the_budget_with_a_summary() -> None:
    ctx = conversation(100)  # 200 messages
    summarise = Summariser("The customer's blue jacket (R-1042) is late; we checked it.")
    got = await window(ctx, budget=1_000, summarise=summarise)
    assert got.tokens <= 1_000
    assert got.summary == "The customer's blue jacket (R-1042) is late; we checked it."
    counter = counter_for(MODEL)
    assert got.tokens == sum(counter.message(m) for m in got.messages) + counter.text(got.summary)
    # The newest turns are shown, whole and in order; the ones before them were folded.
    assert got.messages[-1]["content"] == f"agent {sentence(99)}"
    assert 4 <= len(got.messages) < 200
    first_shown = got.messages[0]["content"]
    assert len(summarise.requests) == 1
    system, user = summarise.requests[0]
    assert system["role"] == "system" and "summary" in system["content"]
    folded = user["content"]
    assert "Summary so far:\n(none yet)" in folded
    lines = folded.split("oldest first:\n", 1)[1].split("\n")
    # What fell out right before the window, oldest first, as far as twice the budget
    # reaches (a first summary of a long session); the oldest beyond that are dropped.
    n = int(first_shown.split("(")[1].split(")")[0])
    assert lines[-1] == f"Agent: agent {sentence(n - 1)}"
    assert lines[-2] == f"Customer: customer {sentence(n - 1)}"
    assert 10 < len(lines) < 2 * n
    assert counter.text(folded) <= 2 * 1_000
    assert first_shown not in folded  # nothing is both shown and folded
    assert got.state_patch is not None
    stored = got.state_patch["data"]["llm"]["summary"]
    assert stored["text"] == got.summary
    json.dumps(got.state_patch)  # plain JSON, as the state is stored

    # The next turn: what the summary covers is never shown again, and it shows instead.
    ctx.state = merge_patch(ctx.state, got.state_patch)
    add_turns(ctx, 100, 1)
    later = await window(ctx, budget=1_000, summarise=summarise)
    assert later.summary == got.summary and later.tokens <= 1_000
    assert len(summarise.requests) == 1  # not due: one turn since
    assert all(f"({n}) " not in m["content"] for m in later.messages for n in range(5))


async def test_the_summary_is_refreshed_at_most_every_n_turns() -> None:
    every, budget = 3, 600
    ctx = conversation(10)
    summarise = Summariser()
    refreshed_at: list[int] = []
    shown: list[str | None] = []
    for turn in range(10, 30):
        got = await window(ctx, budget=budget, every=every, summarise=summarise)
        assert got.tokens <= budget
        if got.state_patch is not None:
            refreshed_at.append(turn)
            ctx.state = merge_patch(ctx.state, got.state_patch)
        shown.append(got.summary)
        add_turns(ctx, turn, 1)
    gaps = [b - a for a, b in itertools.pairwise(refreshed_at)]
    assert len(gaps) >= 3 and all(gap >= every for gap in gaps)
    assert len(summarise.requests) == len(refreshed_at)
    # Between refreshes the older summary still shows.
    first = refreshed_at[0] - 10
    assert shown[first] == shown[first + 1] == shown[first + every - 1] == "summary number 1"
    assert shown[first + every] == "summary number 2"
    assert refreshed_at[1] == refreshed_at[0] + every  # due again, and something fell out
    # Each refresh is given the summary it replaces.
    assert "summary number 1" in summarise.requests[1][1]["content"]


async def test_every_turn_when_n_is_one() -> None:
    ctx = conversation(40)
    summarise = Summariser()
    for turn in range(40, 44):
        got = await window(ctx, budget=500, every=1, summarise=summarise)
        assert got.state_patch is not None
        ctx.state = merge_patch(ctx.state, got.state_patch)
        add_turns(ctx, turn, 1)
    assert len(summarise.requests) == 4


async def test_the_same_inputs_give_the_same_window_and_request() -> None:
    first, second = Summariser(), Summariser()
    a = await window(conversation(60), budget=800, summarise=first)
    b = await window(conversation(60), budget=800, summarise=second)
    assert a == b
    assert first.requests == second.requests and len(first.requests) == 1
    entries = timeline(conversation(3).history, conversation(3).replies_history)
    assert [e.order for e in entries] == sorted(e.order for e in entries)


async def test_a_long_or_empty_summary_answer() -> None:
    wordy = Summariser(" ".join(["blah"] * 2_000))
    got = await window(conversation(60), budget=800, summarise=wordy)
    counter = counter_for(MODEL)
    assert got.summary is not None and counter.text(got.summary) <= 800 // 4
    assert got.summary.endswith(" ...") and got.tokens <= 800

    empty = Summariser("   ")
    got = await window(conversation(60), budget=800, summarise=empty)
    assert got.summary is None and got.state_patch is None and got.tokens <= 800
    assert len(empty.requests) == 1


async def test_a_failed_summary_call_keeps_the_turn_going() -> None:
    async def unavailable(request: list[dict[str, Any]]) -> str:
        raise RuntimeError("every model failed")

    ctx = conversation(60)
    ctx.state = {"data": {"llm": {"summary": {"text": "Older.", "through": [0, 0, 1, 0, "0"]}}}}
    got = await history_window(
        ctx,  # type: ignore[arg-type]
        budget_tokens=800,
        model=MODEL,
        summarise=unavailable,
        summary_every_turns=1,
    )
    assert got.summary == "Older." and got.state_patch is None and got.tokens <= 800


async def test_a_stored_summary_hides_what_it_covers() -> None:
    ctx = conversation(5)
    everything = timeline(ctx.history, ctx.replies_history)
    through = everything[3].order  # the first two turns
    ctx.state = {
        "data": {
            "llm": {"summary": {"text": "Earlier: hello.", "through": list(through)}},
        }
    }
    got = await window(ctx)
    assert got.summary == "Earlier: hello."
    assert got.messages[0]["content"] == f"customer {sentence(2)}"
    assert len(got.messages) == 6
    # A malformed stored summary reads as none.
    ctx.state = {"data": {"llm": {"summary": {"text": "x", "through": "soon"}}}}
    got = await window(ctx)
    assert got.summary is None and len(got.messages) == 10


@pytest.mark.parametrize("model", [MODEL, "gpt-4o-mini"])
async def test_the_budget_holds_by_the_models_own_count(model: str) -> None:
    # gpt-4o-mini counts exactly where tiktoken and its vocabulary are installed.
    counter = counter_for(model)
    wordy = Summariser(" ".join(["blah"] * 2_000))
    for budget in (0, 40, 150, 700, 2_500):
        ctx = conversation(100)
        got = await history_window(
            ctx,  # type: ignore[arg-type]
            budget_tokens=budget,
            model=model,
            summarise=wordy,
            summary_every_turns=3,
        )
        shown = sum(counter.message(m) for m in got.messages)
        assert got.tokens == shown + counter.text(got.summary or "") <= budget
        assert (got.messages and got.summary) or budget < 150
        # The budget shrinks: the stored summary is cut to the new share.
        ctx.state = merge_patch(ctx.state, got.state_patch or {})
        smaller = await history_window(
            ctx,  # type: ignore[arg-type]
            budget_tokens=budget // 2,
            model=model,
            summarise=wordy,
            summary_every_turns=3,
        )
        assert smaller.tokens <= budget // 2
