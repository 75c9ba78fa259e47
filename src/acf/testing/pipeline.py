"""A scriptable pipeline: delays, replies, exceptions, a supersede hook and tool steps.

A script is a list of steps run in order, then the reply. Steps (one key each):

- ``sleep: MS``: wait on the runtime's clock (a virtual one in the harness);
- ``busy: MS`` (with ``attempts: N``): hold the process for MS without yielding, as a
  CPU-bound pipeline does: nothing else runs meanwhile (lease renewals included). On the
  harness's virtual clock the time passes at once; on a real clock the thread sleeps;
- ``absorb: true``: take newer messages into the turn (``ctx.absorb()``);
- ``raise: TEXT`` (with ``attempts: N``: only while ``ctx.attempt <= N``);
- ``crash: true`` (with ``attempts: N``): the process dies here (a poison message);
- ``irreversible: NAME`` (with ``force: true``): pass the irreversible gate, then run the
  tool NAME once, shielded from supersede; counted per (tool, turn group);
- ``step: NAME``: a memoised step (``ctx.step``), counted each time it really runs;
- ``emit: NAME``: a progress event;
- ``call: NAME`` with ``args: {...}``: call a tool through the gateway (``ctx.tools``); the
  outcome ("ok", "already_done", "refused", "invalid", "failed", "in_doubt") is added to
  ``{tools}`` in the reply;
- ``confirm: NAME`` with ``args`` and ``prompt``: ask the customer to confirm the call; the
  question (Yes / No buttons) follows the reply.

Any step may carry ``when_text: TEXT``: it then runs only if a message of the turn
contains TEXT.

The reply is ``reply`` with ``{text}`` (the turn's texts joined by `` | ``; on a REPLAY
turn, which has no messages, the texts its dead letter holds), ``{count}``,
``{attempt}``, ``{state}``, ``{tools}`` (the tool outcomes of this run) and
``{confirmation}`` (how a pending confirmation was settled: ``yes:ok``, ``no``, ``expired``)
filled in.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.domain.messages import InboundMessage
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.supersede import SupersedeDecision
from acf.ports.checkpoints import Checkpoints, NoCheckpoints, Phase
from acf.ports.clock import Clock
from acf.ports.pipeline import PendingInput, TurnContext
from acf.testing.clock import VirtualClock


@dataclass(frozen=True, slots=True)
class Script:
    steps: tuple[Mapping[str, Any], ...] = ()
    reply: str | None = "echo: {text}"
    on_new_messages: SupersedeDecision | None = None
    state_patch: Mapping[str, Any] | None = None
    handoff: str | None = None


@dataclass(slots=True)
class Tally:
    """What really ran, across restarts of the runtime (the harness keeps one)."""

    tool_runs: Counter[str] = field(default_factory=Counter)
    """Executions of non-idempotent actions per key (the scripted ``irreversible`` step and
    COMPENSATABLE / IRREVERSIBLE gateway tools): more than 1 breaks invariant 4."""
    backend_calls: Counter[str] = field(default_factory=Counter)
    """Every call a gateway tool's backend received, per tool and arguments."""
    step_runs: Counter[str] = field(default_factory=Counter)
    pending_input: int = 0
    running: Counter[str] = field(default_factory=Counter)
    """Pipelines running now, per session."""
    most_running: int = 0
    """The most pipelines ever running at once for one session (DESIGN §3.3 says 1)."""


def _fill(template: str, ctx: TurnContext, outcomes: list[str]) -> str:
    texts = [m.text or (m.button.title if m.button else "") or "" for m in ctx.messages]
    if not texts and ctx.replay is not None:
        texts = [str(t) for t in ctx.replay.request.get("messages") or ()]
    settled = ctx.confirmation
    confirmation = (
        "" if settled is None else ":".join(str(v) for v in settled.values() if v is not None)
    )
    return template.format(
        confirmation=confirmation,
        text=" | ".join(texts),
        count=len(texts),
        attempt=ctx.attempt,
        state=dict(ctx.state),
        tools=",".join(outcomes),
    )


class ScriptedPipeline:
    name = "scripted"
    version = "1"

    def __init__(
        self,
        script: Script,
        tally: Tally | None = None,
        checkpoints: Checkpoints | None = None,
        crash: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.script = script
        self.tally = tally or Tally()
        self._checkpoints = checkpoints or NoCheckpoints()
        self._crash = crash

    def on_new_messages(
        self, ctx: TurnContext, new_messages: Sequence[InboundMessage]
    ) -> SupersedeDecision | None:
        return self.script.on_new_messages

    async def run(self, ctx: TurnContext) -> PipelineResult:
        c = ctx.correlation
        assert c.session_id is not None
        outcomes: list[str] = []
        questions: list[ReplySegment] = []
        self.tally.running[c.session_id] += 1
        self.tally.most_running = max(self.tally.most_running, self.tally.running[c.session_id])
        try:
            await self._checkpoints.reached(Phase.PIPELINE_RUNNING, c.tenant, c.session_id)
            for step in self.script.steps:
                await self._step(ctx, step, outcomes, questions)
        finally:
            self.tally.running[c.session_id] -= 1
        segments = (
            ()
            if self.script.reply is None
            else (ReplySegment(_fill(self.script.reply, ctx, outcomes)),)
        )
        return PipelineResult(
            segments=segments + tuple(questions),
            state_patch=self.script.state_patch,
            handoff=self.script.handoff,
        )

    def _applies(self, ctx: TurnContext, step: Mapping[str, Any]) -> bool:
        limit = step.get("attempts")
        return limit is None or ctx.attempt <= int(limit)

    async def _step(
        self,
        ctx: TurnContext,
        step: Mapping[str, Any],
        outcomes: list[str],
        questions: list[ReplySegment],
    ) -> None:
        needle = step.get("when_text")
        if needle is not None and not any(needle in (m.text or "") for m in ctx.messages):
            return
        if "sleep" in step:
            await ctx.clock.sleep(int(step["sleep"]) / 1000)
        elif "busy" in step:
            if self._applies(ctx, step):
                _hold_the_process(ctx.clock, int(step["busy"]))
        elif "absorb" in step:
            await ctx.absorb()
        elif "raise" in step:
            if self._applies(ctx, step):
                raise RuntimeError(str(step["raise"]))
        elif "crash" in step:
            if self._applies(ctx, step) and self._crash is not None:
                await self._crash()
                await asyncio.Event().wait()  # the dropped runtime cancels us here
        elif "irreversible" in step:
            await self._irreversible(ctx, str(step["irreversible"]), bool(step.get("force")))
        elif "step" in step:
            name = str(step["step"])
            await ctx.step(name, self._count_step, name, [m.seq for m in ctx.messages])
        elif "call" in step:
            result = await ctx.tools.call(str(step["call"]), dict(step.get("args") or {}))
            outcomes.append(result.outcome.value)
        elif "confirm" in step:
            question = await ctx.request_confirmation(
                str(step["confirm"]), dict(step.get("args") or {}), str(step.get("prompt", "OK?"))
            )
            questions.append(question)
        elif "emit" in step:
            await ctx.emit(str(step["emit"]))
        else:
            raise ValueError(f"unknown pipeline step {dict(step)}")

    async def _count_step(self, name: str, seqs: list[int]) -> dict[str, Any]:
        self.tally.step_runs[name] += 1
        return {"name": name, "seqs": seqs}

    async def _irreversible(self, ctx: TurnContext, tool: str, force: bool) -> None:
        try:
            await ctx.enter_irreversible(force=force)
        except PendingInput:
            self.tally.pending_input += 1
            raise
        key = f"{tool}:{ctx.correlation.group_id}"

        async def execute() -> None:
            await ctx.clock.sleep(0.05)  # the backend takes a moment
            self.tally.tool_runs[key] += 1

        await ctx.shielded(execute())


def _hold_the_process(clock: Clock, ms: int) -> None:
    """Time passes and nothing else in the process runs (no ``await``)."""
    if isinstance(clock, VirtualClock):
        clock.advance(ms)
    else:
        time.sleep(ms / 1000)  # blocking the loop is the point
