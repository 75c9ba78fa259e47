"""Running one RUNNING turn to its end: attempts, supersede, retries, failure, commit.

DESIGN §4 steps 3-4, §6 and §15. The runner holds the session lease (through a
``LeaseKeeper``) for the whole run; every unit it commits is fenced.
"""

import asyncio
from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from acf.domain.errors import AcfError, Conflict
from acf.domain.ids import new_id
from acf.domain.messages import InboundMessage
from acf.domain.policy import AccumulationMode
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.state import combine_patches
from acf.domain.supersede import SupersedeDecision, choose, may_commit_with_unseen
from acf.domain.tools import DEFAULT_TOOL_TIMEOUT_MS, LedgerStatus
from acf.domain.turns import Turn, TurnGroup
from acf.observability.trace_context import traced
from acf.ports.checkpoints import Phase
from acf.ports.ledger import LedgerQuery
from acf.ports.pipeline import InDoubt, PendingInput, SupersedeHook
from acf.service import turn_endings, turn_units
from acf.service.agents import AgentBinding
from acf.service.attempt_context import attempt_context, show_typing
from acf.service.compensation import compensate_group
from acf.service.confirmation_settling import earlier_settlement, settle_confirmation
from acf.service.lease_keeper import LeaseKeeper
from acf.service.parts import Parts
from acf.service.turn_context import LeaseLost, RunningTurnContext, TurnFrame

log = structlog.get_logger("acf.runtime")

CANCEL_GRACE_MS = DEFAULT_TOOL_TIMEOUT_MS + 5_000
"""How long a cancelled pipeline may take to stop before it is abandoned: longer than a
shielded tool call may take, plus its ledger write."""


class RunEnd(StrEnum):
    COMMITTED = "committed"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True, slots=True)
class _Finished:
    result: PipelineResult
    state_version: int
    ctx: RunningTurnContext
    group: TurnGroup


@dataclass(frozen=True, slots=True)
class _Failed:
    error: str
    final: bool = False
    """Retrying cannot help (the same refusal would come back): fail the turn now."""


@dataclass(frozen=True, slots=True)
class _Supersede:
    reason: str


_Outcome = _Finished | _Failed | _Supersede | RunEnd


class TurnRunner:
    def __init__(
        self, parts: Parts, binding: AgentBinding, keeper: LeaseKeeper, news: asyncio.Event
    ) -> None:
        self._parts = parts
        self._binding = binding
        self._settings = binding.settings
        self._keeper = keeper
        self._news = news
        self._versions = parts.versions(binding)

    async def run(self, turn: Turn, key: SessionKey) -> RunEnd:
        """Run ``turn`` (RUNNING, its attempt recorded) until it is terminal or the lease
        is lost. A turn adopted from a dead holder (another fence) is re-run as the next
        attempt, or failed when it has used its attempts (a poison message)."""
        with traced(turn.trace_id):  # its tool, agent and provider calls carry its trace
            return await self._run(turn, key)

    async def _run(self, turn: Turn, key: SessionKey) -> RunEnd:
        p = self._parts
        frame = TurnFrame(
            turn, key, p.store, p.clock, p.tasks, self._keeper, self._versions, p.checkpoints
        )
        frame.off = self._settings.policy_for(key.channel).mode is AccumulationMode.OFF
        started_at = p.clock.now_ms()
        try:
            if turn.fence != self._keeper.fence:
                if turn.attempt >= self._settings.max_attempts:
                    error = f"the process stopped during each of {turn.attempt} attempt(s)"
                    return await self._fail(frame, error, started_at)
                await self._rerun(frame, "recovered")
            while True:
                outcome = await self._attempt(frame)
                if isinstance(outcome, _Finished):
                    outcome = await self._finish(frame, outcome, started_at)
                if isinstance(outcome, RunEnd):
                    return outcome
                if isinstance(outcome, _Supersede):
                    return await self._supersede(frame, outcome.reason, started_at)
                await frame.commit(
                    turn_units.attempt_failed(
                        frame.turn,
                        self._keeper.fence,
                        outcome.error,
                        p.clock.now_ms(),
                        self._versions,
                    )
                )
                if outcome.final or frame.turn.attempt >= self._settings.max_attempts:
                    return await self._fail(frame, outcome.error, started_at)
                if not await self._pause(self._settings.backoff_ms(frame.turn.attempt)):
                    return RunEnd.LEASE_LOST
                await self._rerun(frame, "retry")
        except LeaseLost:
            return RunEnd.LEASE_LOST

    async def _group(self, frame: TurnFrame) -> TurnGroup:
        group = await self._parts.store.turns.get_group(frame.turn.tenant, frame.turn.group_id)
        if group is None:
            raise Conflict(f"turn {frame.turn.turn_id} has no group")
        return group

    async def _rerun(self, frame: TurnFrame, reason: str) -> None:
        group = await self._group(frame)
        now = self._parts.clock.now_ms()
        fence = self._keeper.fence
        await frame.commit(turn_units.rerun(frame.turn, group, fence, reason, now, self._versions))
        frame.turn = replace(frame.turn, attempt=frame.turn.attempt + 1, fence=fence)
        await self._parts.checkpoints.reached(
            Phase.RUN_STARTED, frame.turn.tenant, frame.turn.session_id
        )

    async def _pause(self, ms: int) -> bool:
        """Sleep ``ms`` unless the lease is lost first; returns whether it is still held."""
        loop = asyncio.get_running_loop()
        sleep = loop.create_task(self._parts.clock.sleep(ms / 1000))
        lost = loop.create_task(self._keeper.lost.wait())
        try:
            await asyncio.wait({sleep, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            lost.cancel()
        return self._keeper.held

    def _default_decision(self, frame: TurnFrame) -> SupersedeDecision:
        if frame.off:
            return SupersedeDecision.QUEUE  # every message is its own turn (email, voice)
        return self._settings.supersede

    def _decide(
        self, frame: TurnFrame, ctx: RunningTurnContext, new: list[InboundMessage], restarts: int
    ) -> SupersedeDecision:
        if frame.off:
            return SupersedeDecision.QUEUE  # no hook can merge or restart OFF turns
        hook = None
        pipeline = self._binding.pipeline
        if isinstance(pipeline, SupersedeHook):
            try:
                hook = pipeline.on_new_messages(ctx, new)
            except Exception as exc:  # a broken hook falls back to the agent's default
                log.warning("supersede_hook.failed", error=repr(exc), turn_id=frame.turn.turn_id)
        if frame.mode is SupersedeDecision.FORCE_COMPLETE:
            return frame.mode
        return choose(
            self._default_decision(frame),
            frame.turn.irreversible_started,
            restarts,
            self._settings.restart_bound,
            hook,
        )

    async def _unseen(self, frame: TurnFrame) -> tuple[int, list[InboundMessage]]:
        t = frame.turn
        session = await self._parts.store.sessions.get(t.tenant, t.session_id)
        if session is None or session.last_seq <= t.to_seq:
            return t.to_seq, []
        new = await self._parts.store.messages.read_range(
            t.tenant, t.session_id, t.to_seq, session.last_seq
        )
        return session.last_seq, new

    async def _context(self, frame: TurnFrame) -> tuple[RunningTurnContext, int, TurnGroup]:
        return await attempt_context(self._parts, self._binding, frame)

    async def _attempt(self, frame: TurnFrame) -> _Outcome:
        p = self._parts
        frame.commit_patch, frame.commit_events, frame.confirmation = None, [], None
        ctx, state_version, group = await self._context(frame)
        frame.gate_passed_before = frame.turn.irreversible_started
        frame.restart_bound_reached = group.restarts >= self._settings.restart_bound
        try:
            settled = await settle_confirmation(
                frame, ctx, self._keeper.fence, state_version, self._parts.clock
            )
        except PendingInput:
            if frame.gate_refused and not frame.turn.irreversible_started:
                return _Supersede("irreversible_gate")
            raise
        if settled is not None:
            ctx, state_version, group = await self._context(frame)  # the state changed
            frame.confirmation = settled
        elif frame.turn.attempt > 1 or group.restarts > 0:
            # An earlier run of this group may have settled it before it crashed or was
            # superseded: the pipeline must still learn how (and say "done").
            frame.confirmation = await earlier_settlement(p.store, frame)
        task = p.tasks.spawn(self._binding.pipeline.run(ctx), f"pipeline:{frame.turn.turn_id}")
        await asyncio.sleep(0)  # let it start: a pipeline that never waits is done already
        if task.done():
            return self._outcome(frame, task, None, state_version, ctx, group)
        deadline = p.tasks.spawn(p.clock.sleep(self._settings.deadline_ms / 1000), "deadline")
        typing = show_typing(self._parts, frame, ctx)
        reason: str | None = None
        try:
            while not task.done() and reason is None:
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
                    reason = "lease_lost"
                elif deadline.done():
                    reason = "deadline"
                elif self._news.is_set():
                    self._news.clear()
                    _, new = await self._unseen(frame)
                    decision = self._decide(frame, ctx, new, group.restarts) if new else None
                    if decision is SupersedeDecision.SUPERSEDE:
                        reason = "new_messages"
                    elif decision is not None:
                        frame.mode = decision  # ABSORB, QUEUE or FORCE_COMPLETE
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
        if not task.done():  # a supersede, a deadline or lease loss
            task.cancel()
            if not await self._stopped(task):
                return RunEnd.LEASE_LOST
        return self._outcome(frame, task, reason, state_version, ctx, group)

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
            "pipeline.ignores_cancellation", **self._versions_fields(task), grace_ms=CANCEL_GRACE_MS
        )
        # Give the lease up in the database too, so the stray pipeline's writes (the
        # irreversible gate, ledger rows) are refused at once, not only after the lease's TTL.
        await self._keeper.release()
        return False

    def _versions_fields(self, task: "asyncio.Task[PipelineResult]") -> dict[str, str]:
        return {"task": task.get_name(), "agent_version": self._versions.agent_version}

    def _outcome(
        self,
        frame: TurnFrame,
        task: "asyncio.Task[PipelineResult]",
        reason: str | None,
        state_version: int,
        ctx: RunningTurnContext,
        group: TurnGroup,
    ) -> _Outcome:
        if reason == "lease_lost":
            return RunEnd.LEASE_LOST
        if reason == "new_messages":
            return _Supersede(reason)
        if reason == "deadline":
            return _Failed(f"deadline of {self._settings.deadline_ms} ms exceeded")
        if task.cancelled():
            return _Failed("the pipeline was cancelled")
        exc = task.exception()
        if exc is None:
            return _Finished(task.result(), state_version, ctx, group)
        if isinstance(exc, LeaseLost):
            return RunEnd.LEASE_LOST
        if isinstance(exc, PendingInput):
            if frame.gate_refused and not frame.turn.irreversible_started:
                return _Supersede("irreversible_gate")
            # Refused after the gate and not handled: a retry would be refused the same.
            return _Failed(f"PendingInput not handled by the pipeline: {exc}", final=True)
        if isinstance(exc, InDoubt):
            return _Failed(f"irreversible action in doubt: {exc}", final=True)
        return _Failed(f"{type(exc).__name__}: {exc}")

    async def _finish(
        self, frame: TurnFrame, done: _Finished, started_at: int
    ) -> _Failed | _Supersede | RunEnd:
        p = self._parts
        await p.checkpoints.reached(
            Phase.PIPELINE_FINISHED, frame.turn.tenant, frame.turn.session_id
        )
        t, group = frame.turn, done.group
        bound = self._settings.restart_bound
        # Optimistic: commit at once, guarded by last_seq = to_seq unless this turn may
        # commit over unseen messages; only a refusal costs a look at what arrived.
        decision = frame.mode or self._default_decision(frame)
        require = not may_commit_with_unseen(
            decision, t.irreversible_started, group.restarts, bound
        )
        while True:
            result = done.result
            if frame.commit_patch is not None:  # a confirmation request rides along
                patch = combine_patches(dict(result.state_patch or {}), frame.commit_patch)
                result = replace(result, state_patch=patch)
            ops = turn_endings.commit(
                t,
                group,
                self._keeper.fence,
                result,
                done.state_version,
                require,
                started_at,
                p.clock.now_ms(),
                self._versions,
                {"mode": frame.mode.value if frame.mode else None},
                frame.commit_events,
            )
            try:
                await frame.commit(ops)
            except Conflict as conflict:
                if conflict.reason != "new_messages":
                    return _Failed(f"commit refused: {conflict}")
                _, new = await self._unseen(frame)
                # An earlier answer (ABSORB, say) stands; the hook is asked only when none.
                decision = frame.mode or self._decide(frame, done.ctx, new, group.restarts)
                if not may_commit_with_unseen(
                    decision, t.irreversible_started, group.restarts, bound
                ):
                    return _Supersede("new_messages")
                require = False
                continue
            except AcfError as exc:  # an invalid state patch, for one
                return _Failed(f"{type(exc).__name__}: {exc}")
            p.poke_relay(t.tenant, t.session_id)
            await p.checkpoints.reached(Phase.COMMITTED, t.tenant, t.session_id)
            return RunEnd.COMMITTED

    async def _supersede(self, frame: TurnFrame, reason: str, started_at: int) -> RunEnd:
        p, t = self._parts, frame.turn
        group = await self._group(frame)
        last_seq, new = await self._unseen(frame)
        now = p.clock.now_ms()
        close = p.decide_window(self._binding, frame.key, new)
        restart = turn_units.new_accumulating_turn(
            t.session_id,
            t.tenant,
            new_id(),
            t.group_id,
            t.trace_id,
            t.from_seq,
            last_seq,
            self._keeper.fence,
            now,
        )
        await frame.commit(
            turn_endings.supersede(
                t,
                group,
                self._keeper.fence,
                restart,
                close.close_at_ms,
                reason,
                started_at,
                now,
                self._versions,
            )
        )
        log.info("turn.superseded", **frame.correlation.fields(), reason=reason)
        return RunEnd.SUPERSEDED

    async def _fail(self, frame: TurnFrame, error: str, started_at: int) -> RunEnd:
        p, t = self._parts, frame.turn
        await compensate_group(self._parts.store, frame, lambda: self._context(frame))
        group = await self._group(frame)
        entries = await p.store.ledger.query(t.tenant, LedgerQuery(group_id=t.group_id))
        await frame.commit(
            turn_endings.fail(
                t,
                group,
                self._keeper.fence,
                error,
                self._settings.fallback_text,
                started_at,
                p.clock.now_ms(),
                self._versions,
                [e for e in entries if e.status is LedgerStatus.STARTED],
            )
        )
        log.warning("turn.failed", **frame.correlation.fields(), error=error, attempts=t.attempt)
        p.poke_relay(t.tenant, t.session_id)
        return RunEnd.FAILED
