"""The scripted rules pipeline: the deterministic default pipeline (DESIGN §7).

One run: settle the confirmation reply (when the runtime settled a pending confirmation
before this turn), then route the turn's text (``turn_text``) with the IntentRouter, wait
the rule's simulated latency (cancellable, so a correction supersedes it), run its tool
``call`` through the gateway, ask its ``confirm`` question, reply from templates, patch
state (the lane, how long it stays sticky, the rule's ``state``), and answer with the
fallback when no rule applies.

A yes or no that settled a confirmation is the whole turn (the runtime settles only a turn
of one unambiguous answer): only the confirmation reply is sent. An expired confirmation
is reported first, then the turn's text is routed as usual. A tool that failed, was
refused, got invalid arguments or is in doubt gets the rule's (or the document's) outcome
reply, never an exception; the rule's state patch, question and hand-off then do not apply.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from acf.domain.errors import InvalidValue
from acf.domain.messages import InboundMessage
from acf.domain.replies import Button, PipelineResult, ReplySegment
from acf.domain.state import combine_patches, replacement_patch
from acf.domain.tools import Outcome, ToolResult
from acf.pipelines import router, templates
from acf.pipelines.rules_model import (
    PRIVATE_KEY,
    ButtonFields,
    CallFields,
    ConfirmFields,
    RulesConfig,
)
from acf.ports.pipeline import TurnContext

_LAST_RESORT = "Sorry, I didn't get that."


def turn_text(messages: Sequence[InboundMessage]) -> str:
    """The turn's messages as one text: their texts, and a button reply's title and id."""
    parts: list[str] = []
    for message in messages:
        if message.text and message.text.strip():
            parts.append(message.text.strip())
        if message.button is not None:
            title = (message.button.title or "").strip()
            parts += [p for p in dict.fromkeys((title, message.button.button_id)) if p]
    return " ".join(parts)


def rules_version(config: RulesConfig) -> str:
    """A content hash of the rules: the pipeline's version."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def outcome_key(outcome: str | None) -> str:
    """Which reply an action's outcome gets: yes, already_done, in_doubt or failed."""
    if outcome == Outcome.OK.value:
        return "yes"
    if outcome in (Outcome.ALREADY_DONE.value, Outcome.IN_DOUBT.value):
        return outcome
    return "failed"


def plain_error(error: str | None) -> str | None:
    """``"CommerceRefusal('there is no order 9')"`` -> ``"there is no order 9"``."""
    if error is None:
        return None
    head, paren, rest = error.partition("(")
    if paren and head.isidentifier() and rest.endswith(")") and len(rest) >= 3:
        inner = rest[:-1]
        if inner[0] == inner[-1] and inner[0] in "'\"":
            return inner[1:-1]
    return error


def _done_at(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M UTC")


@dataclass(slots=True)
class _Answer:
    segments: list[ReplySegment] = field(default_factory=list)
    patch: dict[str, Any] = field(default_factory=dict)
    outcomes: list[str] = field(default_factory=list)
    handoff: str | None = None
    expects_more_input: bool = False

    def add(
        self, texts: Sequence[str], values: Mapping[str, Any], buttons: Sequence[ButtonFields] = ()
    ) -> None:
        rendered = [t for t in (templates.render(x, values).strip() for x in texts) if t]
        for i, text in enumerate(rendered):
            last = i == len(rendered) - 1
            chosen = tuple(Button(b.id, b.title) for b in buttons) if last else ()
            self.segments.append(ReplySegment(text, chosen))

    def merge(self, patch: Mapping[str, Any]) -> None:
        self.patch = combine_patches(self.patch, patch)


class RulesPipeline:
    """Implements ``Pipeline`` over a validated ``RulesConfig``."""

    def __init__(
        self, config: RulesConfig, name: str = "rules", version: str | None = None
    ) -> None:
        self.config = config
        self.name = name
        self.version = version or rules_version(config)

    async def run(self, ctx: TurnContext) -> PipelineResult:
        state = ctx.state
        meta: Mapping[str, Any] = state.get("meta") or {}
        private: Mapping[str, Any] = (state.get("data") or {}).get(PRIVATE_KEY) or {}
        text = turn_text(ctx.messages)
        answer = _Answer()
        settled = ctx.confirmation
        if settled is not None:
            await self._settled(ctx, settled, private, text, answer)
        found = None
        if settled is None or settled.get("answer") == "expired":
            found = router.route(
                text,
                self.config,
                meta.get("lane"),
                meta.get("sticky_until_ms"),
                ctx.clock.now_ms(),
                last_intent=private.get("intent"),
                state=state,
            )
        if found is not None:
            await self._answer(ctx, found, text, answer)
        if not answer.segments:
            values = {"state": state, "text": text}
            answer.add(self.config.fallback, values, self.config.fallback_buttons)
            answer.outcomes.append("fallback")
        if not answer.segments:
            answer.add([_LAST_RESORT], {})
        return PipelineResult(
            segments=tuple(answer.segments),
            state_patch=answer.patch or None,
            expects_more_input=answer.expects_more_input,
            outcomes=tuple(answer.outcomes),
            handoff=answer.handoff,
            details={"route": None if found is None else _describe(found)},
        )

    async def _settled(
        self,
        ctx: TurnContext,
        settled: Mapping[str, Any],
        private: Mapping[str, Any],
        text: str,
        answer: _Answer,
    ) -> None:
        """The reply to a confirmation the runtime settled before this run."""
        pending: Mapping[str, Any] = private.get("confirm") or {}
        rule = self.config.rule(str(pending.get("rule", "")))
        confirm = None if rule is None else rule.confirm
        said = str(settled.get("answer"))
        key = outcome_key(settled.get("outcome")) if said == "yes" else said
        values: dict[str, Any] = {**(pending.get("captures") or {})}
        values.update(state=ctx.state, text=text)
        if rule is not None:
            values.update(lane=rule.lane, intent=rule.intent_name)
        if said == "yes" and confirm is not None:
            entries = [e for e in await ctx.ledger_entries() if e.tool == confirm.tool]
            if entries:
                entry = max(entries, key=lambda e: e.started_at_ms)
                values.update(
                    result=entry.result,
                    error=plain_error(entry.error),
                    done_at=_done_at(entry.finished_at_ms),
                )
        own = None if confirm is None else getattr(confirm, key, None)
        template = own or getattr(self.config.confirmation_replies, key, None)
        answer.add([template or self.config.confirmation_replies.failed], values)
        answer.outcomes.append(f"confirmation:{key}")
        if pending:
            answer.merge({"data": {PRIVATE_KEY: {"confirm": None}}})

    async def _answer(
        self, ctx: TurnContext, found: router.Route, text: str, answer: _Answer
    ) -> None:
        rule = found.rule
        values: dict[str, Any] = {**found.captures}
        values.update(state=ctx.state, text=text, lane=found.lane, intent=found.intent)
        answer.merge(
            {
                "meta": {"lane": found.lane, "sticky_until_ms": found.sticky_until_ms},
                "data": {PRIVATE_KEY: {"intent": found.intent, "rule": rule.name}},
            }
        )
        answer.outcomes.append(f"intent:{found.intent}")
        if rule.latency_ms:
            await ctx.clock.sleep(rule.latency_ms / 1000)  # cancellable: a supersede cuts it
        reply = rule.reply
        if rule.call is not None:
            result = await ctx.tools.call(rule.call.tool, self._args(rule.call.args, values))
            answer.outcomes.append(f"{rule.call.tool}:{result.outcome.value}")
            values.update(_result_values(result))
            other = self._call_reply(rule.call, result)
            if other is not None and not result.ok:
                answer.add([other], values)
                return
            if other is not None:
                reply = (other,)
        question = None
        if rule.confirm is not None:
            question = await self._ask(ctx, rule.confirm, values, answer)
            if question is None:
                return
            # Replace what an earlier question left (its captures), never merge into it.
            earlier = ((ctx.state.get("data") or {}).get(PRIVATE_KEY) or {}).get("confirm")
            confirm = {"rule": rule.name, "captures": dict(found.captures)}
            answer.merge({"data": {PRIVATE_KEY: {"confirm": replacement_patch(earlier, confirm)}}})
            answer.expects_more_input = True
        answer.add(reply, values, rule.buttons)
        if question is not None:
            answer.segments.append(question)
        if rule.state:
            answer.merge(templates.render_value(rule.state, values))
        if rule.handoff is not None:
            answer.handoff = templates.render(rule.handoff, values).strip() or rule.name

    def _args(self, args: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        rendered = templates.render_value(args, values)
        return dict(rendered) if isinstance(rendered, Mapping) else {}

    def _call_reply(self, call: CallFields, result: ToolResult) -> str | None:
        """The reply replacing the rule's own, by outcome; ``None``: the rule's own."""
        replies = self.config.tool_replies
        if result.outcome is Outcome.OK:
            return None
        if result.outcome is Outcome.ALREADY_DONE:
            return call.already_done or replies.already_done
        if result.outcome is Outcome.IN_DOUBT:
            return call.in_doubt or replies.in_doubt
        return call.failed or replies.failed

    async def _ask(
        self,
        ctx: TurnContext,
        confirm: ConfirmFields,
        values: dict[str, Any],
        answer: _Answer,
    ) -> ReplySegment | None:
        args = self._args(confirm.args, values)
        prompt = (
            templates.render(confirm.prompt, values).strip() or f"Go ahead with {confirm.tool}?"
        )
        try:
            if confirm.ttl_seconds is None:
                return await ctx.request_confirmation(confirm.tool, args, prompt)
            ttl_ms = confirm.ttl_seconds * 1000
            return await ctx.request_confirmation(confirm.tool, args, prompt, ttl_ms)
        except InvalidValue as exc:  # not allowed, or the arguments do not fit the tool
            values["error"] = str(exc)
            answer.add([confirm.failed or self.config.tool_replies.failed], values)
            answer.outcomes.append(f"{confirm.tool}:not_asked")
            return None


def _result_values(result: ToolResult) -> dict[str, Any]:
    return {
        "result": result.value,
        "error": plain_error(result.error),
        "done_at": _done_at(result.done_at_ms),
    }


def _describe(found: router.Route) -> dict[str, Any]:
    return {
        "rule": found.rule.name,
        "lane": found.lane,
        "intent": found.intent,
        "confidence": found.confidence,
        "sticky_until_ms": found.sticky_until_ms,
        "by_sticky_lane": found.by_sticky_lane,
    }
