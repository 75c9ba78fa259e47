"""One round of the model's tool calls, run through the gateway (DESIGN §8, §16).

Each call in the order the model made it: the reserved functions are answered here
(``report_outcome`` records the category, ``send_messages`` collects messages); a call
naming one of the agent's tools, by its function name or its tool name, goes to
``ctx.tools.call`` under the tool's name; any other name goes as it is (the gateway
refuses a tool outside the agent's allowlist, on the record). Arguments that are not a
JSON object (or are nested deeper than ``MAX_ARGS_DEPTH``) never reach a tool. A tool
whose spec requires confirmation is not called, whichever name the model used (the
gateway would refuse it too): the first such call asks the customer
(``ctx.request_confirmation``) and the round is kept (``rounds.PendingRound``); a second
one in the same round is answered as not run. ``PendingInput`` and ``InDoubt`` from the
gateway propagate: the runtime decides.
"""

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.domain.errors import InvalidValue
from acf.domain.replies import ReplySegment
from acf.domain.tools import LedgerStatus, Outcome, SideEffectPolicy, ToolResult, ToolSpec
from acf.pipelines.llm import enforcement, messages, outcomes, rounds
from acf.pipelines.llm.completion import Completion, ToolCall
from acf.pipelines.llm.shaping import strip_markdown
from acf.pipelines.llm.state import log_entry
from acf.pipelines.llm.tool_schemas import REPORT_OUTCOME, SEND_MESSAGES, ToolSchemas
from acf.ports.ledger import LedgerEntry
from acf.ports.pipeline import TurnContext

MAX_MESSAGES = 10
"""Messages one ``send_messages`` call may send."""
MAX_ARGS_DEPTH = 32
"""Nesting of a call's arguments (objects and arrays) beyond which they are invalid: tool
arguments are shallow, and deeper values would overflow the stack of what handles them."""

OnHit = Callable[[str, str, str], Awaitable[None]]
"""Records an enforcement hit: ``(rule, detail, action)``."""


@dataclass(slots=True)
class TurnFindings:
    """What the tool rounds of one turn found out, for the reply and its outcome."""

    log: list[dict[str, Any]] = field(default_factory=list)
    """New ``tool_log`` entries."""
    done_tools: set[str] = field(default_factory=set)
    """Tools that succeeded (or were already done) in this turn."""
    side_effect_done: bool = False
    report: outcomes.Report | None = None
    sent: list[str] = field(default_factory=list)
    """Messages the model sent through ``send_messages``."""

    def record(
        self, spec: ToolSpec | None, tool: str, args: Mapping[str, Any], result: ToolResult, at: int
    ) -> None:
        self.log.append(log_entry(at, tool, args, result))
        if result.ok:
            self.done_tools.add(tool)
        if result.outcome is Outcome.OK and spec is not None:
            self.side_effect_done |= spec.policy is not SideEffectPolicy.PURE


@dataclass(frozen=True, slots=True)
class Asked:
    """The round ended the turn with a confirmation question."""

    segment: ReplySegment
    round: rounds.PendingRound


def parse_args(arguments: str) -> dict[str, Any] | str:
    """The arguments as a JSON object, or why they are not one."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        return f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    except RecursionError:
        return f"the arguments are nested deeper than {MAX_ARGS_DEPTH} levels"
    except ValueError as exc:  # a number too long to convert, say
        return f"the arguments are not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"the arguments must be a JSON object, not {type(value).__name__}"
    if _depth(value) > MAX_ARGS_DEPTH:
        return f"the arguments are nested deeper than {MAX_ARGS_DEPTH} levels"
    return value


def _depth(value: Any) -> int:
    """How deeply ``value``'s objects and arrays nest (without recursion)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, level)
        if level <= MAX_ARGS_DEPTH:
            todo += [(c, level + 1) for c in children if isinstance(c, (dict, list))]
    return deepest


def invalid(error: str) -> dict[str, Any]:
    return {"outcome": Outcome.INVALID.value, "error": error, "note": messages.NOTES["invalid"]}


def default_prompt(spec: ToolSpec, args: Mapping[str, Any]) -> str:
    """``Shall I refund order (order_id 7)?``"""
    action = spec.name.replace("_", " ").replace(".", " ").replace("-", " ")
    shown = ", ".join(f"{k} {v}" for k, v in sorted(args.items()))
    return f"Shall I {action} ({shown})?" if shown else f"Shall I {action}?"


class RoundRunner:
    """Runs the tool calls of one turn's rounds; ``findings`` gathers what they did."""

    def __init__(
        self,
        ctx: TurnContext,
        schemas: ToolSchemas,
        rules: enforcement.Rules,
        findings: TurnFindings,
        on_hit: OnHit,
    ) -> None:
        self.ctx = ctx
        self.schemas = schemas
        self.rules = rules
        self.findings = findings
        self.on_hit = on_hit

    async def run(self, completion: Completion) -> Asked | list[dict[str, Any]]:
        """Run the round: its tool messages (one per call id), or the question that ends
        the turn."""
        replies: list[dict[str, Any]] = []
        pending: tuple[ReplySegment, ToolCall, ToolSpec, dict[str, Any]] | None = None
        for call in completion.tool_calls:
            content: Mapping[str, Any]
            if call.name == REPORT_OUTCOME:
                content = self._report(call)
            elif call.name == SEND_MESSAGES:
                content = self._send(call)
            else:
                args = parse_args(call.arguments)
                spec = self.schemas.spec(call.name)
                if isinstance(args, str):
                    content = invalid(args)
                elif spec is not None and spec.requires_confirmation:
                    if pending is not None:
                        content = rounds.NOT_RUN
                    else:
                        asked = await self._ask(spec, args, completion.text)
                        if isinstance(asked, ReplySegment):
                            pending = (asked, call, spec, args)
                            continue  # answered when the customer is
                        content = asked
                else:
                    content = await self._call(spec, call.name, args)
            replies.append(messages.tool_message(call.call_id, content))
        if pending is None:
            return replies
        segment, call, spec, args = pending
        kept = rounds.PendingRound(
            messages.assistant_message(completion), tuple(replies), call.call_id, spec.name, args
        )
        return Asked(segment, kept)

    async def _call(self, spec: ToolSpec | None, name: str, args: dict[str, Any]) -> dict[str, Any]:
        tool = name if spec is None else spec.name
        result = await self.ctx.tools.call(tool, args)
        self.findings.record(spec, tool, args, result, self.ctx.clock.now_ms())
        return messages.result_content(result)

    async def _ask(
        self, spec: ToolSpec, args: dict[str, Any], text: str
    ) -> ReplySegment | dict[str, Any]:
        """Ask the customer to confirm; the model's text is the question unless it is
        empty or breaks an enforcement rule (then ``default_prompt``)."""
        prompt = text.strip()
        if prompt and not self.ctx.capabilities.markdown:
            prompt = strip_markdown(prompt)
        if prompt:
            hits = enforcement.check(self.rules, [prompt], self.findings.done_tools)
            for hit in hits:
                await self.on_hit(hit.rule, hit.detail, "default_question")
            if hits:
                prompt = ""
        try:
            return await self.ctx.request_confirmation(
                spec.name, args, prompt or default_prompt(spec, args)
            )
        except InvalidValue as exc:  # refused or invalid arguments: nothing was asked
            return invalid(str(exc))

    def _report(self, call: ToolCall) -> dict[str, Any]:
        args = parse_args(call.arguments)
        report = args if isinstance(args, str) else outcomes.parse_report(args)
        if isinstance(report, str):
            return invalid(report)
        self.findings.report = report
        return {"outcome": "ok", "note": f"Recorded: {report.category.value}."}

    def _send(self, call: ToolCall) -> dict[str, Any]:
        args = parse_args(call.arguments)
        if isinstance(args, str):
            return invalid(args)
        texts = args.get("messages")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return invalid("messages must be a list of strings")
        kept = [t for t in texts if t.strip()][:MAX_MESSAGES]
        self.findings.sent += kept
        return {"outcome": "ok", "note": f"{len(kept)} message(s) will be sent with your reply."}


def ledger_done(entries: Sequence[LedgerEntry]) -> set[str]:
    """Tools with a succeeded execution among ledger ``entries``."""
    return {e.tool for e in entries if e.status is LedgerStatus.SUCCEEDED}
