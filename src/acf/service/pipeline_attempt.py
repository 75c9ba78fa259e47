"""One attempt of a running turn: settle a pending confirmation, run the pipeline while
watching for new messages, the deadline and lease loss, and say how it ended.

It decides nothing itself: on new messages it asks ``domain.turn_steps.on_new_messages``,
and it returns an ``AttemptOutcome`` for ``after_attempt`` (DESIGN §4 step 3, §6).

News is also how it learns that the session left agent mode (a handoff, a cool-down, a
block wake the session): it reads the mode then, and stops a turn that has not passed
the irreversible gate (``MODE_CHANGED``: the turn stands down); one that has goes on as
QUEUE, and its commit withholds the reply: its typing indicator stops and its drafts are
withdrawn at once (``reply.draft_withdrawn``), since no reply of it will come.

A pipeline that finished with a reply while the customer types may be held before the
commit (``service.typing_hold``, the channel's ``typing_hold_ms``): its result waits in
the RUNNING turn, the deadline no longer running, and the time it waits is kept apart
(``held_ms``: the run's time less it is the turn's run time, ``TurnOutcomes``). News
during the hold is heard as here: a
new message gets the usual decision (``on_news``), applied as to a finished turn that finds
unseen messages (``after_commit_refused``: SUPERSEDE, and ABSORB short of the gate or the
restart bound, discard the result; QUEUE and FORCE_COMPLETE commit it at once); the session
leaving agent mode stands the turn down (past the gate: it commits silently).
"""

import asyncio
from dataclasses import dataclass

import structlog

from acf.domain.events import EventKind, FabricEvent
from acf.domain.messages import InboundMessage
from acf.domain.modes import SessionMode
from acf.domain.replies import PipelineResult
from acf.domain.supersede import SupersedeDecision
from acf.domain.tools import DEFAULT_TOOL_TIMEOUT_MS
from acf.domain.turn_steps import (
    AttemptEnding,
    AttemptOutcome,
    NewsStep,
    Supersede,
    after_commit_refused,
    on_new_messages,
)
from acf.domain.turns import TurnGroup
from acf.domain.typing_hold import HoldEnd
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.pipeline import InDoubt, PendingInput, SupersedeHook
from acf.service.attempt_context import attempt_context, show_typing
from acf.service.confirmation_settling import earlier_settlement, settle_confirmation
from acf.service.irreversible_gate import IrreversibleGate
from acf.service.lease_keeper import LeaseKeeper
from acf.service.running_turn import LeaseLost, ModeChanged, RunningTurn
from acf.service.runtime_parts import RuntimeParts
from acf.service.turn_context import RunningTurnContext
from acf.service.typing_hold import Interrupt, TypingHold

log = structlog.get_logger("acf.runtime")

CANCEL_GRACE_MS = DEFAULT_TOOL_TIMEOUT_MS + 5_000
"""How long a cancelled pipeline may take to stop before it is abandoned: longer than a
shielded tool call may take, plus its ledger write."""


@dataclass(frozen=True, slots=True)
class Finished:
    """What a pipeline that returned leaves for the commit."""

    result: PipelineResult
    state_version: int
    ctx: RunningTurnContext
    group: TurnGroup


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    outcome: AttemptOutcome
    finished: Finished | None = None
    """Set when the pipeline returned (``AttemptEnding.FINISHED``)."""


class PipelineAttempt:
    """Runs the attempts of one running turn (one at a time)."""

    def __init__(
        self,
        parts: RuntimeParts,
        binding: AgentBinding,
        keeper: LeaseKeeper,
        news: asyncio.Event,
        run: RunningTurn,
        gate: IrreversibleGate,
    ) -> None:
        self._parts = parts
        self._binding = binding
        self._settings = binding.settings
        self._keeper = keeper
        self._news = news
        self._run = run
        self._gate = gate
        self._left_for: SessionMode | None = None
        """The mode the session was found in when this attempt was stopped for it."""
        self.held_ms = 0
        """How long this runner's attempts held ready replies while the customer typed
        (``Hold.waited_ms``, summed): time the turn waited on purpose, not run time."""
        run.drafts = parts.drafts  # where ``ctx.draft`` publishes

    async def context(self) -> tuple[RunningTurnContext, int, TurnGroup]:
        return await attempt_context(self._parts, self._binding, self._run, self._gate)

    def _end(self, ending: AttemptEnding, error: str = "") -> AttemptEnd:
        outcome = AttemptOutcome(
            ending,
            self._run.turn.attempt,
            error,
            self._gate.refused,
            self._run.turn.irreversible_started,
            self._left_for if ending is AttemptEnding.MODE_CHANGED else None,
        )
        return AttemptEnd(outcome)

    async def on_news(
        self, ctx: RunningTurnContext, new: list[InboundMessage], restarts: int
    ) -> NewsStep:
        """Ask the pipeline's hook (if it has one), then the rule."""
        run = self._run
        hook = None
        pipeline = self._binding.pipeline
        if not run.off and isinstance(pipeline, SupersedeHook):
            try:
                hook = pipeline.on_new_messages(ctx, new)
            except Exception as exc:  # a broken hook falls back to the agent's default
                log.warning("supersede_hook.failed", error=repr(exc), turn_id=run.turn.turn_id)
        return on_new_messages(
            off=run.off,
            taken=run.news_decision,
            hook=hook,
            irreversible_started=run.turn.irreversible_started,
            restarts=restarts,
            settings=self._settings,
        )

    async def run(self) -> AttemptEnd:
        """Run one attempt; a finished one's reply may then be held while the customer
        types (``_held``)."""
        return await self._held(await self._attempt())

    async def _attempt(self) -> AttemptEnd:
        p, run = self._parts, self._run
        self._left_for = None
        ctx, state_version, group = await self.context()
        self._gate.begin_attempt(group.restarts >= self._settings.restart_bound)
        try:
            settled = await settle_confirmation(
                run, ctx, self._keeper.fence, state_version, p.clock
            )
        except ModeChanged:  # the confirmed action's gate found the session handed over
            return self._end(AttemptEnding.MODE_CHANGED)
        except PendingInput as exc:
            if self._gate.refused and not run.turn.irreversible_started:
                return self._end(AttemptEnding.PENDING_INPUT, str(exc))  # it supersedes
            raise
        if settled is not None:
            ctx, state_version, group = await self.context()  # the state changed
            ctx.settled = settled
        elif run.turn.attempt > 1 or group.restarts > 0:
            # An earlier run of this group may have settled it before it crashed or was
            # superseded: the pipeline must still learn how (and say "done").
            ctx.settled = await earlier_settlement(p.store, run)
        task = p.tasks.spawn(self._binding.pipeline.run(ctx), f"pipeline:{run.turn.turn_id}")
        try:
            await asyncio.sleep(0)  # let it start: a pipeline that never waits is done already
            if task.done():
                return self._ended(task, None, state_version, ctx, group)
            stopped_for = await self._watch(task, ctx, group)
            if not task.done():  # a supersede, a deadline or lease loss
                task.cancel()
                if not await self._stopped(task):
                    return self._end(AttemptEnding.LEASE_LOST)
            return self._ended(task, stopped_for, state_version, ctx, group)
        finally:
            ctx.end_drafts()  # what it drafts after its end would only mislead

    async def _watch(
        self, task: "asyncio.Task[PipelineResult]", ctx: RunningTurnContext, group: TurnGroup
    ) -> AttemptEnding | None:
        """Wait for the pipeline; why it must stop early, or None when it ended."""
        p, run = self._parts, self._run
        deadline = p.tasks.spawn(p.clock.sleep(self._settings.deadline_ms / 1000), "deadline")
        typing = show_typing(p, run, ctx)
        try:
            while not task.done():
                news = p.tasks.spawn(self._news.wait(), "news")
                lost = p.tasks.spawn(self._keeper.lost.wait(), "lost")
                try:
                    await asyncio.wait(
                        {task, news, lost, deadline}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    news.cancel()
                    lost.cancel()
                if task.done():
                    break
                if self._keeper.lost.is_set():
                    return AttemptEnding.LEASE_LOST
                if deadline.done():
                    return AttemptEnding.DEADLINE
                if self._news.is_set():
                    self._news.clear()
                    if await self._left_agent_mode():
                        return AttemptEnding.MODE_CHANGED
                    if self._left_for is not None:
                        # Past the gate: it finishes, the operator's messages wait; what
                        # it shows the customer (typing, drafts) ends now.
                        if typing is not None:
                            typing.cancel()
                            typing = None
                        if not await self._withdraw_drafts(ctx):
                            return AttemptEnding.LEASE_LOST
                        continue
                    _, new = await run.unseen()
                    if not new:
                        continue
                    step = await self.on_news(ctx, new, group.restarts)
                    if isinstance(step, Supersede):
                        return AttemptEnding.NEW_MESSAGES
                    run.news_decision = step.decision  # ABSORB, QUEUE or FORCE_COMPLETE
            return None
        except asyncio.CancelledError:
            task.cancel()  # the runtime stops: never leave the pipeline running
            raise
        except Exception:
            task.cancel()  # our own failure (the store, say): stop the pipeline first
            await self._stopped(task)
            raise
        finally:
            deadline.cancel()
            if typing is not None:
                typing.cancel()

    async def _held(self, end: AttemptEnd) -> AttemptEnd:
        """Hold a finished attempt's reply while the customer types; how the attempt ends
        then (a commit, or what news during the hold decided), the wait added to
        ``held_ms``. A reply the commit will withhold (past the gate, the session left
        agent mode) is not held."""
        done = end.finished
        if done is None or self._left_for is not None:
            return end
        hold = TypingHold(self._parts, self._run, self._keeper, self._news, self._settings)
        held = await hold.hold(
            done.result,
            done.ctx.messages,
            done.group.restarts,
            lambda last_seq: self._heard_in_hold(done, last_seq),
        )
        self.held_ms += held.waited_ms
        if held.ending is not None:
            return self._end(held.ending)
        return end

    async def _heard_in_hold(self, done: Finished, last_seq: int) -> Interrupt | None:
        """News during a hold: whether it ends it (the session left agent mode; a message
        after ``last_seq``), and how the attempt ends then (None: it commits)."""
        run = self._run
        if await self._left_agent_mode():
            return Interrupt(HoldEnd.MODE, AttemptEnding.MODE_CHANGED)
        if self._left_for is not None:  # past the gate: it commits silently, drafts withdrawn
            lost = not await self._withdraw_drafts(done.ctx)
            return Interrupt(HoldEnd.MODE, AttemptEnding.LEASE_LOST if lost else None)
        seq, new = await run.unseen()
        if seq <= last_seq:
            return None  # a typing signal
        restarts = done.group.restarts
        decision = (await self.on_news(done.ctx, new, restarts)).decision
        step = after_commit_refused(
            decision, run.turn.irreversible_started, restarts, self._settings
        )
        if isinstance(step, Supersede):
            return Interrupt(HoldEnd.MESSAGE, AttemptEnding.NEW_MESSAGES)
        run.news_decision = decision  # QUEUE or FORCE_COMPLETE (or past the gate)
        return Interrupt(HoldEnd.MESSAGE)

    async def _left_agent_mode(self) -> bool:
        """Whether the turn must stop because its session left agent mode: read the mode;
        a turn past the irreversible gate is never stopped, it goes on as QUEUE (a
        forced completion stays forced) and its commit withholds the reply."""
        run = self._run
        mode = await run.mode()
        if mode is None or mode.agent_answers:
            return False
        self._left_for = mode
        if not run.turn.irreversible_started:
            return True
        if run.news_decision is not SupersedeDecision.FORCE_COMPLETE:
            run.news_decision = SupersedeDecision.QUEUE
        return False

    async def _withdraw_drafts(self, ctx: RunningTurnContext) -> bool:
        """The session left agent mode under a turn past the gate (its reply will be
        withheld): no more drafts, and those shown are withdrawn at once
        (``reply.draft_withdrawn``, fenced). False when the lease is lost."""
        run = self._run
        ctx.end_drafts()
        drafted = run.drafted
        if drafted is None:
            return True
        now = self._parts.clock.now_ms()
        data = {"attempt": drafted.attempt, "fence": drafted.fence, "reason": "mode"}
        withdrawal = FabricEvent(EventKind.REPLY_DRAFT_WITHDRAWN, now, run.correlation, data)
        try:
            await run.commit(
                [CheckFence(run.turn.session_id, self._keeper.fence, now), AppendEvent(withdrawal)]
            )
        except LeaseLost:
            return False
        run.drafted = None
        return True

    async def _stopped(self, task: "asyncio.Task[PipelineResult]") -> bool:
        """Wait (a bounded time) for a cancelled pipeline to end. One that ignores
        cancellation is abandoned with the lease: its writes are fenced from then on, and
        the turn is re-run once the lease expires."""
        p = self._parts
        grace = p.tasks.spawn(p.clock.sleep(CANCEL_GRACE_MS / 1000), "cancel-grace")
        try:
            await asyncio.wait({task, grace}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            grace.cancel()
        if task.done():
            return True
        log.error(
            "pipeline.ignores_cancellation",
            task=task.get_name(),
            agent_version=self._run.versions.agent_version,
            grace_ms=CANCEL_GRACE_MS,
        )
        # Give the lease up in the database too, so the stray pipeline's writes (the
        # irreversible gate, ledger rows) are refused at once, not only after the lease's TTL.
        await self._keeper.release()
        return False

    def _ended(
        self,
        task: "asyncio.Task[PipelineResult]",
        stopped_for: AttemptEnding | None,
        state_version: int,
        ctx: RunningTurnContext,
        group: TurnGroup,
    ) -> AttemptEnd:
        """How the attempt ended, from why it was stopped or what the pipeline did."""
        if stopped_for is not None:
            return self._end(stopped_for)
        if task.cancelled():
            return self._end(AttemptEnding.CANCELLED)
        exc = task.exception()
        if exc is None:
            finished = Finished(task.result(), state_version, ctx, group)
            return AttemptEnd(self._end(AttemptEnding.FINISHED).outcome, finished)
        if isinstance(exc, LeaseLost):
            return self._end(AttemptEnding.LEASE_LOST)
        if isinstance(exc, ModeChanged):
            return self._end(AttemptEnding.MODE_CHANGED)
        if isinstance(exc, PendingInput):
            return self._end(AttemptEnding.PENDING_INPUT, str(exc))
        if isinstance(exc, InDoubt):
            return self._end(AttemptEnding.IN_DOUBT, str(exc))
        return self._end(AttemptEnding.RAISED, f"{type(exc).__name__}: {exc}")
