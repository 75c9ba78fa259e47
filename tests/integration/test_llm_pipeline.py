"""The ``llm`` pipeline on the real runtime (the harness: SQLite file, virtual clock, the
gateway, the ledger) with a scripted in-process model: the tool loop, confirmations
replayed with their settlement, "already done" within the dedupe TTL, enforcement of
claimed actions, refusals outside the allowlist, recovery reusing a stored completion and
a dead model failing to the fallback."""

import json
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from acf.config.pipelines import LlmPipelineFields
from acf.domain.agent_settings import DEFAULT_FALLBACK_TEXT
from acf.domain.events import EventKind
from acf.domain.handoff import HandoffPolicy
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.pipelines.llm.completion import Completion, LlmUnavailable, ToolCall, Usage
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.llm.rounds import from_state
from acf.ports.checkpoints import Phase
from acf.ports.clock import Clock
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script
from acf.testing.tools import ToolBackend

ORDER_ARGS = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}
LOOKUP = ToolSpec(
    "lookup_order", SideEffectPolicy.PURE, args_schema=ORDER_ARGS, description="Look up an order"
)
REFUND = ToolSpec(
    "refund_order",
    SideEffectPolicy.IRREVERSIBLE,
    args_schema=ORDER_ARGS,
    business_key="{order_id}",
    requires_confirmation=True,
    description="Refund an order",
)
HANDOFF_NOTICE = HandoffPolicy().notice
CLAIMS = {"refund_order": [r"\bI(?: have|'ve)? refunded\b", r"\brefund (?:is|was) (?:done|issued)"]}

Reply = Completion | BaseException | Callable[[Mapping[str, Any]], Completion]


class ScriptedCompleter:
    """A ``Completer`` answering from a script, in order; it records every request (as
    JSON) and streams each answer's words to ``on_delta``."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[dict[str, Any]] = []
        self.drafts: list[str] = []

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: Any = None,
        on_event: Any = None,
    ) -> Completion:
        self.requests.append(json.loads(json.dumps(request)))
        assert self.replies, f"no scripted answer left for request {len(self.requests)}"
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            raise reply
        answer = reply if isinstance(reply, Completion) else reply(request)
        if on_delta is not None:
            for word in answer.text.split(" "):
                await on_delta(word + " ")
        return answer


def answer(text: str, model: str = "m1") -> Completion:
    return Completion(model, text, finish_reason="stop", usage=Usage(100, 20), ttft_ms=300)


def calls(*made: tuple[str, Mapping[str, Any] | str], text: str = "") -> Completion:
    tool_calls = tuple(
        ToolCall(f"call_{n}", name, args if isinstance(args, str) else json.dumps(args))
        for n, (name, args) in enumerate(made, start=1)
    )
    return Completion(
        "m1", text, tool_calls, finish_reason="tool_calls", usage=Usage(80, 10), ttft_ms=250
    )


def fields(**changes: Any) -> LlmPipelineFields:
    body: dict[str, Any] = {
        "kind": "llm",
        "model": "m1",
        "base_url": "http://127.0.0.1:9/v1",
        "prices": {"m1": {"input": 1.0, "output": 2.0}},
        "enforcement": {"claims": CLAIMS},
        **changes,
    }
    return LlmPipelineFields.model_validate(body)


def harness(tmp_path: Path, completer: ScriptedCompleter, **changes: Any) -> Harness:
    pipeline = LlmPipeline(
        fields(**changes),
        PromptSource("You help {tenant_display_name}.", "Shop"),
        [LOOKUP, REFUND],
        completer,
    )
    tools = (ToolBackend(LOOKUP, delay_ms=10), ToolBackend(REFUND, delay_ms=10))
    return Harness(tmp_path, HarnessOptions(pipeline=pipeline, tools=tools))


async def records(h: Harness, customer: str = "alice") -> list[Any]:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    turns = await h.store.turns.list_turns(TENANT, session.session_id)
    found = [await h.store.turns.get_record(TENANT, t.turn_id) for t in turns]
    return [r for r in found if r is not None and r.outcome.value == "committed"]


async def events(h: Harness, *kinds: EventKind) -> list[Any]:
    return await h.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))


def tool_replies(request: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        m["tool_call_id"]: json.loads(m["content"])
        for m in request["messages"]
        if m["role"] == "tool"
    }


async def test_a_lookup_then_an_answer(tmp_path: Path) -> None:
    model = ScriptedCompleter(
        calls(("lookup_order", {"order_id": "7"})), answer("Order 7 has shipped.")
    )
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Where is order 7?")
        await h.run_until_idle()
        assert h.replies("alice") == ["Order 7 has shipped."]
        first, second = model.requests
        assert first["messages"][0]["role"] == "system"
        assert "You help Shop." in first["messages"][0]["content"]
        assert first["messages"][-1] == {"role": "user", "content": "Where is order 7?"}
        names = [f["function"]["name"] for f in first["tools"]]
        assert names == ["lookup_order", "refund_order", "report_outcome", "send_messages"]
        assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "lookup_order"
        reply = tool_replies(second)["call_1"]
        assert reply["outcome"] == "ok"
        assert reply["value"] == {"done": "lookup_order", "args": {"order_id": "7"}}
        (record,) = await records(h)
        usage = record.details["llm"]
        assert record.details["outcomes"] == ["ANSWERED"]
        assert usage["tool_rounds"] == 1
        assert usage["prompt_tokens"] == 180 and usage["completion_tokens"] == 30
        assert usage["cost"] == (180 * 1.0 + 30 * 2.0) / 1_000_000
        assert usage["ttft_ms"] == 250
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        (logged,) = session.state["data"]["llm"]["tool_log"]
        assert logged["tool"] == "lookup_order" and logged["outcome"] == "ok"


def refund_then(*after: Reply) -> ScriptedCompleter:
    return ScriptedCompleter(
        calls(("refund_order", {"order_id": "7"}), text="Shall I refund order 7?"), *after
    )


async def test_a_refund_asks_first_and_the_model_learns_the_outcome_next_turn(
    tmp_path: Path,
) -> None:
    model = refund_then(answer("Done: your refund of order 7 went through."))
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Please refund order 7.")
        await h.run_until_idle()
        assert h.replies("alice") == ["Shall I refund order 7?"]
        assert sum(h.tally.tool_runs.values()) == 0  # nothing runs before the yes
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        kept = from_state(session.state["data"]["llm"]["pending_round"])
        assert kept is not None and kept.pending_call_id == "call_1"
        await h.advance(5_000)
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "Done: your refund of order 7 went through."
        assert list(h.tally.tool_runs.values()) == [1]
        replay = model.requests[-1]["messages"]
        at = next(i for i, m in enumerate(replay) if m.get("tool_calls"))
        assert replay[at]["tool_calls"][0]["id"] == "call_1"
        settled = json.loads(replay[at + 1]["content"])
        assert replay[at + 1]["tool_call_id"] == "call_1"
        assert settled["confirmation"] == "yes" and settled["outcome"] == "ok"
        assert settled["value"] == {"done": "refund_order", "args": {"order_id": "7"}}
        assert replay[-1] == {"role": "user", "content": "yes"}
        asked, done = await records(h)
        assert asked.details["outcomes"] == ["ASKED_USER"]
        assert done.details["outcomes"] == ["TOOL_DONE"]
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        assert "pending_round" not in session.state["data"]["llm"]


async def test_the_same_refund_within_a_day_is_already_done(tmp_path: Path) -> None:
    model = refund_then(
        answer("Done: refunded."),
        calls(("refund_order", {"order_id": "7"})),
        answer("That refund was already done earlier today."),
    )
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Please refund order 7.")
        await h.run_until_idle()
        await h.send("alice", "yes")
        await h.run_until_idle()
        await h.advance(3_600_000)
        await h.send("alice", "Refund order 7 please.")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "Shall I refund order (order_id 7)?"  # the default
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "That refund was already done earlier today."
        assert list(h.tally.tool_runs.values()) == [1]  # one execution, ever
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="refund_order"))
        settled = next(
            json.loads(m["content"])
            for m in model.requests[-1]["messages"]
            if m["role"] == "tool" and "confirmation" in m["content"]
        )
        assert settled["outcome"] == "already_done"
        assert "already done" in settled["note"]
        assert settled["done_at_ms"] == entry.finished_at_ms


async def test_a_claimed_refund_that_did_not_run_is_regenerated_then_withheld(
    tmp_path: Path,
) -> None:
    model = ScriptedCompleter(
        answer("I have refunded your order 7."), answer("I've refunded it, all good.")
    )
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Refund order 7!")
        await h.run_until_idle()
        # withheld, and the session handed to a person (one notice)
        assert h.replies("alice") == [DEFAULT_FALLBACK_TEXT, HANDOFF_NOTICE]
        retry = model.requests[1]
        assert retry["tool_choice"] == "none"
        assert retry["messages"][-2] == {
            "role": "assistant",
            "content": "I have refunded your order 7.",
        }
        assert retry["messages"][-1]["role"] == "system"
        assert "refund_order" in retry["messages"][-1]["content"]
        hits = [
            e.data
            for e in await events(h, EventKind.TURN_PROGRESS)
            if e.data.get("name") == "enforcement.hit"
        ]
        assert [(d["rule"], d["action"]) for d in hits] == [
            ("claimed_action", "regenerate"),
            ("claimed_action", "fallback"),
        ]
        (record,) = await records(h)
        assert record.details["outcomes"] == ["FAILED"]
        assert await events(h, EventKind.SESSION_FLAGGED)
        assert sum(h.tally.tool_runs.values()) == 0


async def test_a_claim_regenerated_honestly_goes_out(tmp_path: Path) -> None:
    model = ScriptedCompleter(
        answer("I have refunded your order 7."),
        answer("I cannot refund yet: shall I start one for order 7?"),
    )
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Refund order 7!")
        await h.run_until_idle()
        assert h.replies("alice") == ["I cannot refund yet: shall I start one for order 7?"]
        assert not await events(h, EventKind.SESSION_FLAGGED)


async def test_a_tool_outside_the_allowlist_is_refused_and_audited(tmp_path: Path) -> None:
    model = ScriptedCompleter(
        calls(("delete_account", {"customer": "bob"}), ("lookup_order", "{not json")),
        answer("Sorry, I cannot do that."),
    )
    async with harness(tmp_path, model) as h:
        await h.send("alice", "Delete bob's account.")
        await h.run_until_idle()
        assert h.replies("alice") == ["Sorry, I cannot do that."]
        replies = tool_replies(model.requests[1])
        assert replies["call_1"]["outcome"] == "refused"
        assert replies["call_2"]["outcome"] == "invalid"
        assert "JSON" in replies["call_2"]["error"]
        (refused,) = await events(h, EventKind.TOOL_REFUSED)
        assert refused.data["tool"] == "delete_account"
        assert not h.tally.backend_calls  # nothing reached a backend


async def test_tool_rounds_are_bounded_then_the_model_must_answer(tmp_path: Path) -> None:
    loop = [calls(("lookup_order", {"order_id": str(n)})) for n in range(2)]
    model = ScriptedCompleter(*loop, answer("Both orders are fine."))
    async with harness(tmp_path, model, max_tool_rounds=2) as h:
        await h.send("alice", "Check my orders.")
        await h.run_until_idle()
        assert h.replies("alice") == ["Both orders are fine."]
        assert [r.get("tool_choice") for r in model.requests] == [None, None, "none"]


async def test_a_recovery_reuses_the_finished_completion(tmp_path: Path) -> None:
    model = ScriptedCompleter(answer("Hello!"))
    async with harness(tmp_path, model) as h:
        h.crash_at(Phase.PIPELINE_FINISHED)
        await h.send("alice", "hi")
        await h.run_until_idle()
        assert h.crashes == 1
        assert h.replies("alice") == ["Hello!"]
        assert len(model.requests) == 1  # the second run found it in the step memo
        (record,) = await records(h)
        assert record.details["llm"]["reused_completions"] == 1


async def test_a_dead_model_fails_the_turn_to_the_fallback_and_flags_it(tmp_path: Path) -> None:
    down = [LlmUnavailable("no model answered") for _ in range(3)]
    model = ScriptedCompleter(*down)
    async with harness(tmp_path, model) as h:
        await h.send("alice", "hi")
        await h.run_until_idle()
        assert h.replies("alice") == [DEFAULT_FALLBACK_TEXT]
        (flagged,) = await events(h, EventKind.SESSION_FLAGGED)
        assert "LlmUnavailable" in flagged.data["reason"]
        assert len(model.requests) == 3  # one per attempt of the turn


async def test_send_messages_and_a_reported_handoff(tmp_path: Path) -> None:
    both = Completion(
        "m1",
        "",
        (
            ToolCall("c1", "send_messages", json.dumps({"messages": ["One.", "**Two.**"]})),
            ToolCall("c2", "report_outcome", json.dumps({"category": "handoff", "reason": "vip"})),
        ),
        finish_reason="tool_calls",
    )
    model = ScriptedCompleter(both)
    async with harness(tmp_path, model) as h:
        await h.send("alice", "I want a person.")
        await h.run_until_idle()
        # web shows markdown; then the handoff notice, once
        assert h.replies("alice") == ["One.", "**Two.**", HANDOFF_NOTICE]
        (record,) = await records(h)
        assert record.details["outcomes"] == ["HANDOFF"]
        (flagged,) = await events(h, EventKind.SESSION_FLAGGED)
        assert "vip" in flagged.data["reason"]
        (handed,) = await events(h, EventKind.SESSION_HANDED_OFF)
        assert handed.data["source"] == "pipeline"


# -- a tool that needs confirmation runs only after the customer's yes ----------------------

BILLING_REFUND = ToolSpec(
    "billing.refund",
    SideEffectPolicy.IRREVERSIBLE,
    args_schema=ORDER_ARGS,
    business_key="{order_id}",
    requires_confirmation=True,
    description="Refund an order",
)


async def test_a_confirmation_tool_called_by_its_tool_name_still_asks_first(
    tmp_path: Path,
) -> None:
    """The model sees ``billing__refund`` but reads ``billing.refund`` in the history's tool
    notes: either spelling is the same tool, asked for, never run without the yes."""
    model = ScriptedCompleter(
        calls(("billing.refund", {"order_id": "7"}), text="Shall I refund order 7?"),
        answer("Done: order 7 is refunded."),
    )
    pipeline = LlmPipeline(fields(), PromptSource(), [LOOKUP, BILLING_REFUND], model)
    tools = (ToolBackend(LOOKUP), ToolBackend(BILLING_REFUND))
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline, tools=tools)) as h:
        await h.send("alice", "Please refund order 7.")
        await h.run_until_idle()
        names = [f["function"]["name"] for f in model.requests[0]["tools"]]
        assert "billing__refund" in names and "billing.refund" not in names
        assert h.replies("alice") == ["Shall I refund order 7?"]
        assert sum(h.tally.backend_calls.values()) == 0  # nothing ran before the yes
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        assert session.state["meta"]["confirmation"]["tool"] == "billing.refund"
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "Done: order 7 is refunded."
        assert list(h.tally.tool_runs.values()) == [1]
        settled = tool_replies(model.requests[-1])["call_1"]
        assert settled["confirmation"] == "yes" and settled["outcome"] == "ok"


async def test_the_gateway_refuses_a_direct_call_of_a_confirmation_tool(tmp_path: Path) -> None:
    """Defence in depth: whatever a pipeline does, ``ctx.tools.call`` never runs a tool
    that needs the customer's confirmation; only the confirmed action does."""
    script = Script(
        steps=(
            {"call": "billing.refund", "args": {"order_id": "7"}, "when_text": "now"},
            {"confirm": "billing.refund", "args": {"order_id": "7"}, "when_text": "ask"},
        ),
        reply="{tools} [{confirmation}]",
    )
    options = HarnessOptions(script=script, tools=(ToolBackend(BILLING_REFUND),))
    async with Harness(tmp_path, options) as h:
        await h.send("alice", "refund now")
        await h.run_until_idle()
        assert h.replies("alice") == ["refused []"]
        assert not h.tally.backend_calls
        (refused,) = await events(h, EventKind.TOOL_REFUSED)
        assert refused.data["tool"] == "billing.refund"
        assert refused.data["reason"] == "needs confirmation"
        await h.send("alice", "please ask")
        await h.run_until_idle()
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == " [yes:ok]"
        assert list(h.tally.tool_runs.values()) == [1]  # the confirmed action ran, once
