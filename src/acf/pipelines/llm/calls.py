"""One round of the model's tool calls, run through the gateway (DESIGN §8, §16).

Each call in the order the model made it: the reserved functions are answered here
(``report_outcome`` records the category, ``send_messages`` collects messages); any other
name goes to ``ctx.tools.call`` as it is (the gateway refuses a tool outside the agent's
allowlist, on the record); arguments that are not a JSON object never reach a tool. A tool
whose spec requires confirmation is not called: the first such call asks the customer
(``ctx.request_confirmation``) and the round is kept (``rounds.PendingRound``); a second
one in the same round is answered as not run. ``PendingInput`` and ``InDoubt`` from the
gateway propagate: the runtime decides.
"""

import json
from collections.abc import Mapping, Sequence
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
    if not isinstance(value, dict):
        return f"the arguments must be a JSON object, not {type(value).__name__}"
    return value


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
    ) -> None:
        self.ctx = ctx
        self.schemas = schemas
        self.rules = rules
        self.findings = findings

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

    async def _call(
        self, spec: ToolSpec | None, function: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        tool = self.schemas.tool_name(function)
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
                await self.ctx.emit(
                    "enforcement.hit",
                    {"rule": hit.rule, "detail": hit.detail, "action": "default_question"},
                )
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
