"""One run of the LLM pipeline over one turn (DESIGN §7, §16).

The request: the system message (prompt, user context, channel, rolling summary), the
history window (what the customer saw, an operator's replies marked), the note of an
operator who handed the conversation back (until the next commit), a confirmation's round
replayed with its settlement, then this turn's messages. Each completion runs in
``ctx.step`` keyed by its exact request, so a retry or a recovery reuses a finished one;
where the channel streams drafts (``capabilities.streams_drafts``: the web chat), its text
deltas are the turn's drafts (the whole text so far, shaped as the reply will be; a retry
that restarts the answer starts it afresh), until that shaped text breaks an enforcement
rule (a claimed action, a banned phrase) as the reply would be checked: from there that
answer drafts nothing more, so the customer never sees what enforcement withholds.
Tool calls run through the gateway (``calls``) for at most ``max_tool_rounds`` rounds; the
last request then forbids tools, so the model must answer. The reply is checked
(``enforcement``), shaped for the channel (``shaping``) and gets its outcome category
(``outcomes``); usage goes into the TurnRecord.

Nothing here catches a cancellation: a supersede cancels the run, the client closes its
stream (and reports ``llm.generation_cancelled``), and the runtime restarts the turn.
``LlmUnavailable`` propagates too: the attempt fails and, after the agent's attempts, the
turn fails to the tenant's fallback reply with the session flagged (DESIGN §15).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acf.config.pipelines import LlmPipelineFields
from acf.domain.agent_settings import DEFAULT_FALLBACK_TEXT
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.state import combine_patches
from acf.domain.tools import LedgerStatus, Outcome, ToolResult, ToolSpec
from acf.pipelines.llm import enforcement
from acf.pipelines.llm.calls import Asked, RoundRunner, TurnFindings, ledger_done
from acf.pipelines.llm.completion import Completer, Completion
from acf.pipelines.llm.history import history_window
from acf.pipelines.llm.messages import assistant_message, plain, user_messages
from acf.pipelines.llm.outcomes import TurnFacts, decide
from acf.pipelines.llm.people import PEOPLE_GUIDE
from acf.pipelines.llm.prompt import PromptSource, Site, system_message
from acf.pipelines.llm.rounds import (
    AWAITING,
    PendingRound,
    from_state,
    settlement_reply,
    to_state,
)
from acf.pipelines.llm.shaping import shape, strip_markdown
from acf.pipelines.llm.state import DONE, appended, done_within_ttl, llm_patch, llm_state, tool_log
from acf.pipelines.llm.summary import TOOL_NOTE_GUIDE, TOOL_NOTE_PREFIX
from acf.pipelines.llm.tool_schemas import RESERVED, ToolSchemas
from acf.pipelines.llm.usage import UsageTally, completion_event
from acf.ports.pipeline import TurnContext

Messages = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Setup:
    """What every turn of one agent shares."""

    fields: LlmPipelineFields
    prompt: PromptSource
    schemas: ToolSchemas
    specs: tuple[ToolSpec, ...]
    rules: enforcement.Rules
    completer: Completer

    def params(self) -> dict[str, Any]:
        """The request's sampling parameters, as configured."""
        params: dict[str, Any] = {}
        if self.fields.temperature is not None:
            params["temperature"] = self.fields.temperature
        if self.fields.max_tokens is not None:
            params["max_tokens"] = self.fields.max_tokens
        return params


def site_of(ctx: TurnContext, locale: str | None) -> Site:
    """Who and where, from the session key of the turn's newest message."""
    newest = [*ctx.history, *ctx.messages]
    if not newest:
        return Site(ctx.correlation.tenant, "", "", "", locale)
    key = newest[-1].key
    return Site(ctx.correlation.tenant, key.agent, key.customer, key.channel.value, locale)


class LlmTurn:
    def __init__(self, setup: Setup, ctx: TurnContext) -> None:
        self.setup = setup
        self.ctx = ctx
        self.site = site_of(ctx, setup.fields.locale)
        self.tally = UsageTally(setup.fields.prices)
        self.findings = TurnFindings()
        self.runner = RoundRunner(ctx, setup.schemas, setup.rules, self.findings, self._emit_hit)
        self.hits: list[dict[str, Any]] = []
        self._draft = ""
        self._muted = False

    async def run(self) -> PipelineResult:
        ctx, fields = self.ctx, self.setup.fields
        window = await history_window(
            ctx,
            budget_tokens=fields.history_tokens,
            model=fields.model,
            summarise=self.summarise,
            summary_every_turns=fields.summary_every_turns,
        )
        noted = any(TOOL_NOTE_PREFIX in str(m.get("content")) for m in window.messages)
        guides = [TOOL_NOTE_GUIDE] if noted else []
        if window.marked:
            guides.append(PEOPLE_GUIDE)
        system = system_message(
            self.setup.prompt,
            self.site,
            fields.user_context,
            ctx.capabilities,
            window.summary,
            guides,
        )
        changes: dict[str, Any] = {}
        convo: Messages = [system, *(dict(m) for m in window.messages)]
        if window.handover:
            convo.append({"role": "system", "content": window.handover})
        convo += await self._confirmation(changes)
        convo += user_messages(ctx.messages)
        ended = await self._loop(convo)
        withheld = None
        if isinstance(ended, Asked):
            segments: tuple[ReplySegment, ...] = (ended.segment,)
            changes["pending_round"] = to_state(ended.round)
        else:
            texts, withheld = await self._finish(*ended)
            segments = tuple(ReplySegment(t) for t in texts)
        if self.findings.log:
            changes["tool_log"] = appended(tool_log(ctx.state), self.findings.log)
        facts = TurnFacts(
            confirmation_asked=isinstance(ended, Asked),
            side_effect_done=self.findings.side_effect_done,
            reported=self.findings.report,
            withheld=withheld,
        )
        decision = decide(facts)
        patch: dict[str, Any] = dict(window.state_patch or {})
        if changes:
            patch = combine_patches(patch, llm_patch(changes))
        details = {
            **self.tally.details(),
            "outcome": decision.category.value,
            "enforcement": self.hits,
            "tools": [{"tool": e["tool"], "outcome": e["outcome"]} for e in self.findings.log],
        }
        await ctx.emit(
            "llm.turn",
            {
                "agent": self.site.agent,
                "models": list(self.tally.models),
                "tool_rounds": self.tally.tool_rounds,
                "outcome": decision.category.value,
            },
        )
        return PipelineResult(
            segments=segments,
            state_patch=patch or None,
            outcomes=(decision.category.value,),
            handoff=decision.handoff,
            details={"llm": details},
        )

    # -- the conversation ------------------------------------------------------------

    async def _confirmation(self, changes: dict[str, Any]) -> Messages:
        """The round a confirmation interrupted, replayed: with the settlement when the
        customer answered, as still waiting while the question stands; dropped otherwise."""
        ctx = self.ctx
        stored = from_state(llm_state(ctx.state).get("pending_round"))
        settled = ctx.confirmation
        if stored is None:
            if settled is None:
                return []
            note = f"The customer answered a confirmation: {plain(settlement_reply(settled))}"
            return [{"role": "system", "content": note}]
        if settled is not None:
            changes["pending_round"] = None
            return stored.replay(await self._settlement(stored, settled))
        if ctx.pending_confirmation is not None:
            return stored.replay(AWAITING)
        changes["pending_round"] = None
        return []

    async def _settlement(self, stored: PendingRound, settled: Mapping[str, Any]) -> dict[str, Any]:
        """The waiting call's reply, with what the ledger recorded for a yes."""
        ctx = self.ctx
        if settled.get("answer") != "yes":
            return settlement_reply(settled)
        outcome = str(settled.get("outcome") or Outcome.FAILED.value)
        value = done_at = None
        if outcome == Outcome.OK.value:
            found = [
                e
                for e in await ctx.ledger_entries()
                if e.tool == stored.tool and e.status is LedgerStatus.SUCCEEDED
            ]
            if found:
                value, done_at = found[-1].result, found[-1].finished_at_ms
        elif outcome == Outcome.ALREADY_DONE.value:
            args = plain(dict(stored.args))
            earlier = [
                e
                for e in tool_log(ctx.state)
                if e.get("tool") == stored.tool and e.get("args") == args
                if e.get("outcome") in DONE
            ]
            done_at = earlier[-1].get("at_ms") if earlier else None
        known = {o.value for o in Outcome}
        result = ToolResult(
            Outcome(outcome) if outcome in known else Outcome.FAILED,
            value,
            done_at_ms=done_at if isinstance(done_at, int) else None,
        )
        spec = self.setup.schemas.spec_of_tool(stored.tool)
        self.findings.record(spec, stored.tool, stored.args, result, ctx.clock.now_ms())
        return settlement_reply(settled, value, result.done_at_ms)

    async def _loop(self, convo: Messages) -> Asked | tuple[Messages, list[str]]:
        """Rounds of tool calls until the model answers: the question that ends the turn,
        or the conversation and the reply's messages."""
        rounds = 0
        while True:
            last = rounds >= self.setup.fields.max_tool_rounds
            completion = await self.complete(convo, "reply", tool_choice="none" if last else None)
            calls = () if last else completion.tool_calls
            if all(c.name in RESERVED for c in calls):
                replies = await self.runner.run(completion) if calls else []
                assert not isinstance(replies, Asked)  # reserved calls ask nothing
                text = completion.text.strip()
                texts = [*self.findings.sent, *([text] if text else [])]
                if texts or not calls:
                    return convo, texts
                ran: Asked | Messages = replies  # a report alone: ask for the reply itself
            else:
                ran = await self.runner.run(completion)
            rounds += 1
            self.tally.tool_rounds = rounds
            if isinstance(ran, Asked):
                return ran
            convo = [*convo, assistant_message(completion), *ran]

    async def _finish(self, convo: Messages, texts: Sequence[str]) -> tuple[list[str], str | None]:
        """The reply's messages after enforcement and shaping, and why it was withheld
        (the fallback went out instead), if it was."""
        ctx, rules = self.ctx, self.setup.rules
        shaped = shape(texts, ctx.capabilities)
        done = (
            self.findings.done_tools
            | ledger_done(await ctx.ledger_entries())
            | done_within_ttl(tool_log(ctx.state), self.setup.specs, ctx.clock.now_ms())
        )
        withheld = None
        hits = enforcement.check(rules, shaped, done) if shaped else []
        if hits:
            await self._hits(hits, "regenerate")
            retry = [
                *convo,
                {"role": "assistant", "content": "\n\n".join(shaped)},
                {"role": "system", "content": enforcement.retry_note(hits)},
            ]
            again = await self.complete(retry, "regenerate", tool_choice="none")
            shaped = shape([again.text], ctx.capabilities)
            hits = enforcement.check(rules, shaped, done) if shaped else []
            if hits and enforcement.withholds(hits):
                await self._hits(hits, "fallback")
                withheld = ", ".join(sorted({h.rule for h in hits}))
                shaped = []
            elif hits and rules.max_chars is not None:
                await self._hits(hits, "cut")
                shaped = enforcement.cut(shaped, rules.max_chars)
        if not shaped:
            withheld = withheld or "the model gave no reply"
            fallback = ctx.config.get("settings", {}).get("fallback_text")
            shaped = [fallback if isinstance(fallback, str) else DEFAULT_FALLBACK_TEXT]
        earlier = [str(r.get("text") or "") for r in ctx.replies_history]
        if enforcement.needs_disclosure(rules, shaped, earlier):
            disclosure = str(rules.disclosure).strip()
            joined = f"{shaped[-1]}\n\n{disclosure}"
            if len(joined) <= ctx.capabilities.max_text_length:
                shaped[-1] = joined
            else:
                shaped.append(disclosure)
            await self._emit_hit(enforcement.REQUIRED_DISCLOSURE, disclosure, "append")
        return shaped, withheld

    async def _hits(self, hits: Sequence[enforcement.Hit], action: str) -> None:
        for hit in hits:
            await self._emit_hit(hit.rule, hit.detail, action)

    async def _emit_hit(self, rule: str, detail: str, action: str) -> None:
        data = {"agent": self.site.agent, "rule": rule, "detail": detail, "action": action}
        self.hits.append({"rule": rule, "detail": detail, "action": action})
        await self.ctx.emit("enforcement.hit", data)

    # -- the model -------------------------------------------------------------------

    async def complete(
        self, convo: Messages, purpose: str, tool_choice: str | None = None
    ) -> Completion:
        """One completion of ``convo`` with the agent's tools, memoised by its request."""
        request: dict[str, Any] = {
            "messages": convo,
            "tools": list(self.setup.schemas.functions),
            **self.setup.params(),
        }
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
        return await self._step("llm.completion", request, purpose, streamed=True)

    async def summarise(self, messages: list[dict[str, Any]]) -> str:
        """The history's summary request (memoised, not streamed to drafts)."""
        request: dict[str, Any] = {"messages": list(messages), "temperature": 0}
        completion = await self._step("llm.summary", request, "summary", streamed=False)
        return completion.text

    async def _step(
        self, name: str, request: dict[str, Any], purpose: str, streamed: bool
    ) -> Completion:
        ctx, setup = self.ctx, self.setup
        fresh = False

        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            nonlocal fresh
            fresh = True
            self._draft, self._muted = "", False
            drafts = streamed and ctx.capabilities.streams_drafts
            completion = await setup.completer.complete(
                body,
                clock=ctx.clock,
                deadline_ms=ctx.deadline_ms,
                on_delta=self._delta if drafts else None,
                on_event=self._event,
            )
            data = completion_event(completion, setup.fields.prices, self.site.agent, purpose)
            await ctx.emit("llm.completion", data)
            return completion.to_json()

        raw = await ctx.step(name, ask, request)
        completion = Completion.from_json(raw)
        self.tally.add(completion, reused=not fresh)
        return completion

    async def _delta(self, text: str) -> None:
        self._draft += text
        if self._muted:
            return
        ctx = self.ctx
        done = self.findings.done_tools | done_within_ttl(
            tool_log(ctx.state), self.setup.specs, ctx.clock.now_ms()
        )
        shaped = shape([self._draft], ctx.capabilities)  # checked as the reply will be
        hits = enforcement.check(self.setup.rules, shaped, done)
        if any(hit.rule != enforcement.MAX_LENGTH for hit in hits):
            self._muted = True  # a claim or a banned phrase is never shown, not even drafted
            return
        markdown = ctx.capabilities.markdown
        await ctx.draft(self._draft if markdown else strip_markdown(self._draft))

    async def _event(self, name: str, data: Mapping[str, Any]) -> None:
        if data.get("restart"):
            self._draft, self._muted = "", False  # the answer starts again: so does its draft
        await self.ctx.emit(name, {**data, "agent": self.site.agent})
