"""One run of the LLM pipeline against an in-memory TurnContext: drafts, a question still
waiting, what must propagate (PendingInput, cancellation), the summary call, shaping and
enforcement edges. The runtime-level behaviour is in ``tests/integration/test_llm_pipeline``."""

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
import structlog

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.events import Correlation
from acf.domain.ids import TraceId
from acf.domain.messages import InboundMessage
from acf.domain.replies import Button, ReplySegment
from acf.domain.session_key import SessionKey
from acf.domain.state import PendingConfirmation
from acf.domain.tools import Outcome, ToolResult
from acf.pipelines.llm.completion import Completion
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.llm.rounds import PendingRound, from_state, to_state
from acf.pipelines.llm.state import TOOL_LOG_LIMIT
from acf.ports.dead_letters import DeadLetter
from acf.ports.ledger import LedgerEntry
from acf.ports.pipeline import PendingInput
from acf.testing import VirtualClock
from tests.integration.test_llm_pipeline import (
    LOOKUP,
    REFUND,
    ScriptedCompleter,
    answer,
    calls,
    fields,
)

KEY = SessionKey("acme", "support", "alice", Channel.WEB)


def message(seq: int, text: str) -> InboundMessage:
    return InboundMessage(f"m{seq}", "s1", KEY, seq, f"p{seq}", seq * 1000, text=text)


class Tools:
    def __init__(self, results: Mapping[str, ToolResult | Exception] | None = None) -> None:
        self.results = dict(results or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        self.calls.append((name, dict(args)))
        result = self.results.get(name, ToolResult(Outcome.OK, {"ok": True}))
        if isinstance(result, Exception):
            raise result
        return result

    async def compensate(self, execution_id: str) -> ToolResult:
        raise AssertionError("not used")


class AgentSessions:
    """In-memory ``ctx.agent_sessions``: rows by id, the saves and their events."""

    def __init__(self) -> None:
        self.rows: dict[str, AgentSessionRow] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def open(self) -> AgentSessionRow | None:
        return next((r for r in self.rows.values() if r.status.is_open), None)

    async def latest(self) -> AgentSessionRow | None:
        rows = sorted(self.rows.values(), key=lambda r: r.last_interaction_at_ms)
        return rows[-1] if rows else None

    async def save(self, row: AgentSessionRow, event: str | None = None, **data: Any) -> None:
        self.rows[row.row_id] = row
        if event is not None:
            self.events.append((event, data))


class Context:
    """An in-memory ``TurnContext``."""

    def __init__(
        self,
        *texts: str,
        state: Mapping[str, Any] | None = None,
        history: Sequence[InboundMessage] = (),
        capabilities: ChannelCapabilities | None = None,
        tools: Tools | None = None,
        confirmation: Mapping[str, Any] | None = None,
        pending: PendingConfirmation | None = None,
    ) -> None:
        self.correlation = Correlation("acme", TraceId("0af7651916cd43dd8448eb211c80319c"))
        self.messages = [message(100 + n, t) for n, t in enumerate(texts)]
        self.history = list(history)
        self.replies_history: list[Mapping[str, Any]] = []
        self.state = state or {"schema_version": 2, "meta": {}, "slots": {}, "data": {}}
        self.config = {"settings": {"fallback_text": "A person will help you."}}
        self.capabilities = capabilities or DEFAULT_CAPABILITIES[Channel.WEB]
        self.attempt = 1
        self.clock = VirtualClock()
        self.deadline_ms = self.clock.now_ms() + 30_000
        self.log = structlog.get_logger("test")
        self.tools = tools or Tools()
        self.pending_confirmation = pending
        self.confirmation = confirmation
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.drafts: list[str] = []
        self.steps: dict[tuple[str, str], Any] = {}
        self.step_names: list[str] = []
        self.asked: list[tuple[str, dict[str, Any], str]] = []
        self.replay: DeadLetter | None = None
        self.agent_sessions = AgentSessions()

    async def request_confirmation(
        self, tool: str, args: Mapping[str, Any], prompt: str, ttl_ms: int = 600_000
    ) -> ReplySegment:
        self.asked.append((tool, dict(args), prompt))
        return ReplySegment(prompt, (Button("confirm:c:yes", "Yes"), Button("confirm:c:no", "No")))

    async def ledger_entries(self) -> list[LedgerEntry]:
        return []

    async def linked_identities(self) -> dict[str, str]:
        return {}

    async def has_pending_messages(self) -> bool:
        return False

    async def absorb(self) -> list[InboundMessage]:
        return []

    async def emit(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        self.events.append((name, dict(data or {})))

    async def draft(self, text: str) -> None:
        self.drafts.append(text)

    async def step(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        key = (name, json.dumps(args, sort_keys=True))
        self.step_names.append(name)
        if key not in self.steps:
            self.steps[key] = await fn(*args)
        return self.steps[key]

    async def enter_irreversible(self, force: bool = False) -> None:
        return None

    async def shielded(self, action: Awaitable[Any]) -> Any:
        return await action


def pipeline(model: ScriptedCompleter, **changes: Any) -> LlmPipeline:
    return LlmPipeline(fields(**changes), PromptSource(), [LOOKUP, REFUND], model)


class Restarting(ScriptedCompleter):
    """Streams "Hel", then reports a retry that restarts the answer, then the answer."""

    async def complete(self, request: Mapping[str, Any], **kw: Any) -> Completion:
        await kw["on_delta"]("Hel")
        await kw["on_event"]("llm.retry", {"model": "m1", "restart": True})
        return await super().complete(request, **kw)


async def test_drafts_are_the_whole_text_so_far_and_start_again_on_a_restart() -> None:
    ctx = Context("hi")
    result = await pipeline(Restarting(answer("Hello there friend"))).run(ctx)
    assert [s.text for s in result.segments] == ["Hello there friend"]
    assert ctx.drafts == ["Hel", "Hello ", "Hello there ", "Hello there friend "]
    retry = next(data for name, data in ctx.events if name == "llm.retry")
    assert retry == {"model": "m1", "restart": True, "agent": "support"}


async def test_a_question_still_waiting_is_replayed_as_waiting_and_kept() -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "refund_order", "arguments": "{}"}}
        ],
    }
    stored = PendingRound(assistant, (), "x", "refund_order", {"order_id": "7"})
    state = {"schema_version": 2, "data": {"llm": {"pending_round": to_state(stored)}}}
    pending = PendingConfirmation(
        confirmation_id="c",
        tool="refund_order",
        args={"order_id": "7"},
        idempotency_key="k",
        prompt="?",
        yes_id="y",
        no_id="n",
        requested_at_ms=0,
        expires_at_ms=10**12,
    )
    model = ScriptedCompleter(answer("Please answer yes or no first."))
    ctx = Context("what about order 8?", state=state, pending=pending)
    result = await pipeline(model).run(ctx)
    sent = model.requests[0]["messages"]
    waiting = json.loads(sent[-2]["content"])
    assert sent[-3] == assistant and waiting["outcome"] == "awaiting_confirmation"
    assert sent[-1] == {"role": "user", "content": "what about order 8?"}
    assert "pending_round" not in json.dumps(result.state_patch or {})  # kept as it was


async def test_a_stale_round_is_dropped_when_no_question_stands() -> None:
    stored = PendingRound({"role": "assistant", "tool_calls": []}, (), "x", "refund_order", {})
    state = {"schema_version": 2, "data": {"llm": {"pending_round": to_state(stored)}}}
    model = ScriptedCompleter(answer("Hi."))
    result = await pipeline(model).run(Context("hello", state=state))
    assert result.state_patch == {"data": {"llm": {"pending_round": None}}}
    assert [m["role"] for m in model.requests[0]["messages"]] == ["system", "user"]


async def test_a_settlement_without_a_stored_round_is_told_as_a_note() -> None:
    model = ScriptedCompleter(answer("OK, I won't."))
    ctx = Context("no", confirmation={"answer": "no", "outcome": None})
    await pipeline(model).run(ctx)
    note = model.requests[0]["messages"][1]
    assert note["role"] == "system" and "said no" in note["content"]


async def test_pending_input_from_the_gateway_propagates() -> None:
    tools = Tools({"lookup_order": PendingInput("newer messages")})
    model = ScriptedCompleter(calls(("lookup_order", {"order_id": "7"})))
    with pytest.raises(PendingInput):
        await pipeline(model).run(Context("where is 7?", tools=tools))


async def test_a_cancellation_is_never_swallowed() -> None:
    model = ScriptedCompleter(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await pipeline(model).run(Context("hi"))


async def test_the_tool_log_keeps_the_last_entries() -> None:
    old = [
        {"at_ms": n, "tool": "lookup_order", "args": {}, "outcome": "ok", "summary": ""}
        for n in range(TOOL_LOG_LIMIT)
    ]
    state = {"schema_version": 2, "data": {"llm": {"tool_log": old}}}
    model = ScriptedCompleter(calls(("lookup_order", {"order_id": "9"})), answer("Found it."))
    ctx = Context("where is 9?", state=state)
    result = await pipeline(model).run(ctx)
    log = result.state_patch["data"]["llm"]["tool_log"]  # type: ignore[index]
    assert len(log) == TOOL_LOG_LIMIT and log[0]["at_ms"] == 1  # the oldest dropped
    assert log[-1]["args"] == {"order_id": "9"} and log[-1]["summary"] == '{"ok": true}'
    assert result.details["llm"]["tools"] == [{"tool": "lookup_order", "outcome": "ok"}]


async def test_the_summary_call_is_a_memoised_step_without_drafts() -> None:
    history = [message(n, f"earlier message number {n} about order {n}") for n in range(1, 40)]
    model = ScriptedCompleter(answer("They asked about many orders."), answer("Sure."))
    ctx = Context("and now?", history=history)
    result = await pipeline(model, history_tokens=60, summary_every_turns=1).run(ctx)
    assert ctx.step_names[0] == "llm.summary"
    summary_request = model.requests[0]
    assert "tools" not in summary_request and summary_request["temperature"] == 0
    assert "They asked about many orders." in model.requests[1]["messages"][0]["content"]
    assert ctx.drafts == ["Sure. "]  # the summary streamed no draft
    assert result.state_patch["data"]["llm"]["summary"]["text"]  # type: ignore[index]
    purposes = [data["purpose"] for name, data in ctx.events if name == "llm.completion"]
    assert purposes == ["summary", "reply"]


async def test_markdown_is_stripped_and_the_disclosure_appended_on_sms() -> None:
    model = ScriptedCompleter(answer("**Order 7** has shipped."))
    enforcement = {"required_disclosure": "I am a bot."}
    ctx = Context("status?", capabilities=DEFAULT_CAPABILITIES[Channel.SMS])
    result = await pipeline(model, enforcement=enforcement).run(ctx)
    assert [s.text for s in result.segments] == ["Order 7 has shipped.\n\nI am a bot."]
    assert (
        "enforcement.hit",
        {
            "agent": "support",
            "rule": "required_disclosure",
            "detail": "I am a bot.",
            "action": "append",
        },
    ) in ctx.events


async def test_a_reply_too_long_twice_is_cut() -> None:
    model = ScriptedCompleter(
        answer("One sentence here. Two sentences here."), answer("Still long. Far too long.")
    )
    result = await pipeline(model, enforcement={"max_chars": 15}).run(Context("tell me"))
    assert [s.text for s in result.segments] == ["Still long."]
    actions = [hit["action"] for hit in result.details["llm"]["enforcement"]]
    assert actions == ["regenerate", "cut"]
    assert result.outcomes == ("ANSWERED",)


async def test_a_confirmation_question_breaking_a_rule_becomes_the_default_one() -> None:
    model = ScriptedCompleter(
        calls(("refund_order", {"order_id": "7"}), text="I have refunded order 7, OK?")
    )
    ctx = Context("refund 7")
    result = await pipeline(model).run(ctx)
    assert ctx.asked == [("refund_order", {"order_id": "7"}, "Shall I refund order (order_id 7)?")]
    assert result.outcomes == ("ASKED_USER",)
    assert not ctx.tools.calls  # type: ignore[attr-defined]
    hit = {"rule": "claimed_action", "detail": "refund_order", "action": "default_question"}
    assert ("enforcement.hit", {"agent": "support", **hit}) in ctx.events  # counted per agent
    assert result.details["llm"]["enforcement"] == [hit]


async def test_two_questions_in_one_round_ask_the_first_and_answer_the_second() -> None:
    model = ScriptedCompleter(
        calls(
            ("refund_order", {"order_id": "7"}),
            ("lookup_order", {"order_id": "7"}),
            ("refund_order", {"order_id": "8"}),
        )
    )
    ctx = Context("refund 7 and 8")
    result = await pipeline(model).run(ctx)
    assert [a[1] for a in ctx.asked] == [{"order_id": "7"}]
    kept = from_state(result.state_patch["data"]["llm"]["pending_round"])  # type: ignore[index]
    assert kept is not None and kept.pending_call_id == "call_1"
    assert kept.assistant["content"] is None  # verbatim, nulls included
    replies = {r["tool_call_id"]: json.loads(r["content"]) for r in kept.replies}
    assert replies["call_2"]["outcome"] == "ok"
    assert replies["call_3"]["outcome"] == "not_run"


async def test_drafts_stop_before_a_claimed_action_shows() -> None:
    model = ScriptedCompleter(
        answer("Sure thing, I have refunded order 7 for you."), answer("I can start a refund.")
    )
    ctx = Context("refund 7")
    result = await pipeline(model).run(ctx)
    assert ctx.drafts[:3] == ["Sure ", "Sure thing, ", "Sure thing, I "]
    assert not any("refunded" in d for d in ctx.drafts)
    assert ctx.drafts[-1] == "I can start a refund. "  # the regenerated answer drafts again
    assert [s.text for s in result.segments] == ["I can start a refund."]


async def test_a_claim_in_markdown_is_neither_drafted_nor_sent() -> None:
    model = ScriptedCompleter(
        answer("Sure thing, I have **refunded** order 7."), answer("I can start a refund.")
    )
    ctx = Context("refund 7")
    result = await pipeline(model).run(ctx)
    assert ctx.drafts[:3] == ["Sure ", "Sure thing, ", "Sure thing, I "]
    assert not any("refunded" in d for d in ctx.drafts)
    assert [s.text for s in result.segments] == ["I can start a refund."]
    assert [h["action"] for h in result.details["llm"]["enforcement"]] == ["regenerate"]


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL, Channel.VOICE])
async def test_a_channel_that_cannot_stream_gets_no_drafts(channel: Channel) -> None:
    model = ScriptedCompleter(answer("Order 7 has shipped."))
    ctx = Context("status?", capabilities=DEFAULT_CAPABILITIES[channel])
    result = await pipeline(model).run(ctx)
    assert ctx.drafts == []  # only the committed reply
    assert [s.text for s in result.segments] == ["Order 7 has shipped."]


async def test_drafts_are_shaped_as_the_reply_where_the_channel_has_no_markdown() -> None:
    plain = ChannelCapabilities(1600, streams_drafts=True)
    model = ScriptedCompleter(answer("**Order 7** has shipped."))
    ctx = Context("status?", capabilities=plain)
    result = await pipeline(model).run(ctx)
    assert ctx.drafts == ["**Order", "Order 7", "Order 7 has", "Order 7 has shipped."]
    assert [s.text for s in result.segments] == [ctx.drafts[-1]]


def test_only_the_web_chat_streams_drafts_by_default() -> None:
    """DESIGN §16: drafts go to channels that can stream; the others get committed replies."""
    assert {c for c in Channel if DEFAULT_CAPABILITIES[c].streams_drafts} == {Channel.WEB}
    web = DEFAULT_CAPABILITIES[Channel.WEB].with_overrides({"streams_drafts": False})
    assert not web.streams_drafts and web.markdown
