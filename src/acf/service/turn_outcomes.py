"""Carrying out the end of a running turn: the commit (with its check for messages the
turn never saw), the supersede and the failure, each one fenced unit (DESIGN §4 step 4,
§6, §15). The units themselves are built in ``turn_ending_units``.

A turn whose pipeline reports a call that failed for good (``PipelineResult.failed_call``)
or that ends FAILED leaves a dead letter in the same unit; a REPLAY turn's commit or
failure records that its letter ran (``dead_letter_units``), so a replay runs once. The
agent session row a pipeline returns (``PipelineResult.agent_session``) is saved with the
commit, so a supersede never leaves a row that describes a reply nobody saw.

The commit and the failure consume the turn's range only in agent mode: refused for the
session's mode (``Conflict("mode")``: a handoff, a cool-down or a block landed under the
turn), a turn past the irreversible gate commits silently (its effects kept, its reply
withheld), any other stands down (``stand_down``). A turn that answers as the agent
carries the handoff triggers and the firewall's refusal count (``turn_triggers``).

With the channel's ``pace`` on, an agent commit also learns the customer's pace
(``turn_pace``), a state patch checked against the state version the turn read; a commit
whose result carries no state of its own that loses to a concurrent state change (config
overrides set while the turn ran or was held) re-reads the state, learns the pace again
and commits once more, instead of failing the attempt (the pipeline would run again).

Time the turn held its ready reply while the customer typed (``PipelineAttempt.held_ms``)
is left out of each ending's ``run_ms`` and record duration (``turn_ending_units``)."""

from dataclasses import replace
from typing import Any

import structlog

from acf.domain.abuse import is_policy_block
from acf.domain.config_versions import record_facts
from acf.domain.errors import AcfError, Conflict, VersionConflict
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode
from acf.domain.replies import FailedCall
from acf.domain.state import combine_patches
from acf.domain.supersede import may_commit_with_unseen
from acf.domain.tools import LedgerStatus
from acf.domain.turn_steps import (
    Fail,
    Retry,
    StandDown,
    Supersede,
    after_commit_refused,
    after_failure,
    after_mode_refused,
    default_decision,
)
from acf.domain.turns import TurnGroup
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.ledger import LedgerQuery
from acf.ports.unit_of_work import WriteOp
from acf.service import (
    dead_letter_units,
    turn_ending_units,
    turn_leaves,
    turn_pace,
    turn_progress_units,
    turn_triggers,
)
from acf.service.compensation import compensate_group
from acf.service.pipeline_attempt import Finished, PipelineAttempt
from acf.service.running_turn import RunningTurn
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.runtime")


class TurnOutcomes:
    """The three ends of one running turn (the runner picks one)."""

    def __init__(
        self,
        parts: RuntimeParts,
        binding: AgentBinding,
        run: RunningTurn,
        attempts: PipelineAttempt,
        started_at_ms: int,
        record_details: dict[str, Any] | None = None,
    ) -> None:
        """``record_details``: added to the committed record's details."""
        self._parts = parts
        self._record_details = dict(record_details or {})
        self._binding = binding
        self._settings = binding.settings
        self._run = run
        self._attempts = attempts
        self._started_at_ms = started_at_ms

    async def group(self) -> TurnGroup:
        t = self._run.turn
        group = await self._parts.store.turns.get_group(t.tenant, t.group_id)
        if group is None:
            raise Conflict(f"turn {t.turn_id} has no group")
        return group

    async def commit(self, done: Finished) -> Supersede | Retry | Fail | StandDown | None:
        """Commit the finished turn; None when committed, else the next step (a supersede
        for unseen messages, a stand-down when the session left agent mode before the
        irreversible gate, a retry or failure when the store refused the unit)."""
        p, run = self._parts, self._run
        t, group = run.turn, done.group
        await p.checkpoints.reached(Phase.PIPELINE_FINISHED, t.tenant, t.session_id)
        # Optimistic: commit at once, guarded by last_seq = to_seq unless this turn may
        # commit over unseen messages; only a refusal costs a look at what arrived.
        decision = run.news_decision or default_decision(run.off, self._settings)
        over_unseen = may_commit_with_unseen(
            decision, t.irreversible_started, group.restarts, self._settings.restart_bound
        )
        result, extra = done.result, []
        request = done.ctx.confirmation_request
        if request is not None:  # a confirmation request rides along
            patch = combine_patches(dict(result.state_patch or {}), request.state_patch)
            result, extra = replace(result, state_patch=patch), request.events
        for leave in (
            turn_leaves.awaiting_patch(done.ctx.state, result.awaiting_answer),
            turn_leaves.handover_patch(done.ctx.state),  # the agent saw the operator's note
        ):
            if leave is not None:
                result = replace(
                    result, state_patch=combine_patches(dict(result.state_patch or {}), leave)
                )
        mode = run.news_decision
        details: dict[str, Any] = {"mode": mode.value if mode else None, **self._record_details}
        if run.replay is not None:
            details["replay_of"] = run.replay.dead_letter_id
        letter_id = new_id()
        silent = False
        refusal: list[WriteOp[Any]] | None = None  # asked once; counted by the unit
        state_version, meta = done.state_version, turn_pace.meta_of(done.ctx.state)
        reread = False  # the state re-read once for the pace (a version conflict)
        while True:
            at_ms = p.clock.now_ms()
            ends = self._letters(result.failed_call, letter_id, at_ms)
            paced = result
            if not silent:
                policy = self._settings.policy_for(run.key.channel)
                paced = turn_pace.paced(
                    result, policy, done.ctx.messages, meta, at_ms, run.replay is not None
                )
            try:
                ops = turn_ending_units.commit(
                    turn=t,
                    group=group,
                    fence=run.keeper.fence,
                    result=paced,
                    state_version=state_version,
                    require_last_seq=not over_unseen,
                    started_at_ms=self._started_at_ms,
                    at_ms=at_ms,
                    versions=run.versions,
                    details=details,
                    extra=[*extra, *ends],
                    silent=silent,
                    held_ms=self._attempts.held_ms,
                )
                if not silent:
                    if refusal is None:
                        refusal = await self._refusal(ops, at_ms)
                    ops = await self._triggers(ops, result.handoff, refusal, at_ms)
                results = await run.commit(ops)
            except Conflict as conflict:
                if conflict.reason == "mode" and not silent:
                    left = after_mode_refused(t.irreversible_started)
                    if isinstance(left, StandDown):
                        return left
                    silent, over_unseen = left.silent, left.over_unseen
                    continue
                if conflict.reason != "new_messages":
                    return self._failed(f"commit refused: {conflict}")
                _, new = await run.unseen()
                # An earlier answer (ABSORB, say) stands; the hook is asked only when none.
                if run.news_decision is not None:
                    decision = run.news_decision
                else:
                    decision = (
                        await self._attempts.on_news(done.ctx, new, group.restarts)
                    ).decision
                step = after_commit_refused(
                    decision, t.irreversible_started, group.restarts, self._settings
                )
                if isinstance(step, Supersede):
                    return step
                over_unseen = step.over_unseen
                continue
            except VersionConflict as exc:
                # Only the pace was written (the turn's own result carries no state): learn
                # it again from the state as it is now, once.
                session = None
                if not reread and not result.state_patch and paced is not result:
                    session = await p.store.sessions.get(t.tenant, t.session_id)
                if session is None:
                    return self._failed(f"{type(exc).__name__}: {exc}")
                state_version, meta, reread = (
                    session.state_version,
                    turn_pace.meta_of(session.state),
                    True,
                )
                continue
            except AcfError as exc:  # an invalid state patch or agent session row, for one
                return self._failed(f"{type(exc).__name__}: {exc}")
            if silent:
                withheld = len(result.segments)
                log.info("turn.reply_withheld", **run.correlation.fields(), replies=withheld)
            elif p.policy_blocks is not None:
                for blocking in turn_triggers.blocks_in(refusal or []):
                    await p.policy_blocks.wake_blocked(results.get(blocking))
            p.poke_relay(t.tenant, t.session_id)
            await p.checkpoints.reached(Phase.COMMITTED, t.tenant, t.session_id)
            return None

    async def _refusal(self, ops: list[WriteOp[Any]], at_ms: int) -> list[WriteOp[Any]]:
        """The firewall's ops for a refusal (the record's category or a refused tool call),
        when it has a ``policy_blocks`` detector: asked once per turn; its count rides in
        the unit, so only the unit that commits counts."""
        p, run = self._parts, self._run
        t = run.turn
        category = record_facts(turn_triggers.record_in(ops)).category
        if p.policy_blocks is None or not is_policy_block(category, run.refused_tools):
            return []
        return list(await p.policy_blocks.refusal_ops(run.key, t.session_id, at_ms, t.trace_id))

    async def _triggers(
        self,
        ops: list[WriteOp[Any]],
        handoff: str | None,
        refusal: list[WriteOp[Any]],
        at_ms: int,
        fallbacks: int | None = None,
    ) -> list[WriteOp[Any]]:
        """``ops`` with the handoff triggers and the firewall's ops after them (its record
        then ``ABUSE_SUSPECTED``). ``fallbacks``: the session's count, read when needed
        and not given."""
        p, t = self._parts, self._run.turn
        facts = turn_triggers.trigger_facts(turn_triggers.record_in(ops))
        if facts.fallback and fallbacks is None:
            session = await p.store.sessions.get(t.tenant, t.session_id)
            fallbacks = 0 if session is None else session.fallbacks
        handing = turn_triggers.handoff_ops(
            t,
            handoff=handoff,
            facts=facts,
            fallbacks=fallbacks or 0,
            policy=p.people(t.tenant).handoff,
            at_ms=at_ms,
        )
        if turn_triggers.acts(refusal):
            ops = turn_triggers.as_abuse(ops)
        return [*ops, *handing, *refusal]

    def _letters(self, failed: FailedCall | None, letter_id: str, at_ms: int) -> list[WriteOp[Any]]:
        """The dead letter of a call that failed for good (if any), and the end of the
        replay this turn ran (if it is a REPLAY turn)."""
        run = self._run
        ops: list[WriteOp[Any]] = []
        if failed is not None:
            ops += dead_letter_units.record(
                run.turn,
                run.versions,
                dead_letter_id=letter_id,
                agent=run.key.agent,
                pipeline=self._binding.pipeline.name,
                error=failed.error,
                attempts=failed.attempts,
                request=failed.request,
                at_ms=at_ms,
            )
        if run.replay is not None:
            ops += dead_letter_units.finish_replay(run.turn, run.versions, run.replay, at_ms)
        return ops

    def _failed(self, error: str) -> Retry | Fail:
        return after_failure(self._run.turn.attempt, error, self._settings)

    async def supersede(self, reason: str) -> None:
        p, run = self._parts, self._run
        t = run.turn
        group = await self.group()
        last_seq, new = await run.unseen()
        now = p.clock.now_ms()
        close = await p.decide_window(self._binding, run.key, t.session_id, new)
        restart = turn_progress_units.new_accumulating_turn(
            session_id=t.session_id,
            tenant=t.tenant,
            turn_id=new_id(),
            group_id=t.group_id,
            trace_id=t.trace_id,
            from_seq=t.from_seq,
            last_seq=last_seq,
            fence=run.keeper.fence,
            at_ms=now,
        )
        await run.commit(
            turn_ending_units.supersede(
                turn=t,
                group=group,
                fence=run.keeper.fence,
                restart=restart,
                close_at_ms=close.close_at_ms,
                reason=reason,
                started_at_ms=self._started_at_ms,
                at_ms=now,
                versions=run.versions,
                held_ms=self._attempts.held_ms,
            )
        )
        log.info("turn.superseded", **run.correlation.fields(), reason=reason)

    async def fail(self, error: str) -> bool:
        """Fail the turn (DESIGN §15); False when it stood down instead: its session left
        agent mode before the irreversible gate (no fallback reply, no compensation). Past
        the gate, the failure commits silently (its fallback reply withheld)."""
        p, run = self._parts, self._run
        t = run.turn
        session = await p.store.sessions.get(t.tenant, t.session_id)
        if session is not None and not session.mode.agent_answers and not t.irreversible_started:
            await self.stand_down(session.mode)
            return False
        await compensate_group(p.store, run, self._attempts.context)
        group = await self.group()
        entries = await p.store.ledger.query(t.tenant, LedgerQuery(group_id=t.group_id))
        messages = await p.store.messages.read_range(t.tenant, t.session_id, t.from_seq, t.to_seq)
        asked = dead_letter_units.failed_turn_request(messages, run.replay)
        state = None if session is None else (session.state_version, session.state)
        fallbacks = 0 if session is None else session.fallbacks
        at_ms = p.clock.now_ms()
        open_row = await p.store.agent_sessions.open_for(t.tenant, t.session_id)
        settled = turn_leaves.settle_open_agent_session(open_row, run.key.agent, error, at_ms)
        letters = self._letters(FailedCall(asked, error, t.attempt), new_id(), at_ms)
        silent = session is not None and not session.mode.agent_answers  # past the gate
        while True:
            ops = turn_ending_units.fail(
                turn=t,
                group=group,
                fence=run.keeper.fence,
                error=error,
                fallback_text=self._settings.fallback_text,
                started_at_ms=self._started_at_ms,
                at_ms=at_ms,
                versions=run.versions,
                unfinished=[e for e in entries if e.status is LedgerStatus.STARTED],
                extra=[*letters, *turn_leaves.agent_session_ops(t, settled)],
                session_state=state,
                silent=silent,
                held_ms=self._attempts.held_ms,
            )
            if not silent:
                ops = await self._triggers(ops, None, [], at_ms, fallbacks)
            try:
                await run.commit(ops)
            except Conflict as conflict:
                if conflict.reason != "mode" or silent:
                    raise
                left = after_mode_refused(t.irreversible_started)
                if isinstance(left, StandDown):
                    await self.stand_down(None)
                    return False
                silent = True
                continue
            break
        log.warning("turn.failed", **run.correlation.fields(), error=error, attempts=t.attempt)
        p.poke_relay(t.tenant, t.session_id)
        return True

    async def left_agent_mode(self) -> SessionMode | None:
        """The session's mode when it left agent mode and the turn, not past the
        irreversible gate, must stand down rather than run again; else None."""
        run = self._run
        if run.turn.irreversible_started:
            return None
        mode = await run.mode()
        return None if mode is None or mode.agent_answers else mode

    async def stand_down(self, mode: SessionMode | None) -> None:
        """End the turn because its session left agent mode (``mode``; read when None):
        SUPERSEDED without a reply, its group HANDED_OFF (``turn_ending_units.stand_down``).
        Calls of the group still ``started`` are settled."""
        p, run = self._parts, self._run
        t = run.turn
        if mode is None:
            mode = await run.mode() or SessionMode.AGENT
        entries = await p.store.ledger.query(t.tenant, LedgerQuery(group_id=t.group_id))
        await run.commit(
            turn_ending_units.stand_down(
                t,
                run.keeper.fence,
                run.versions,
                p.clock.now_ms(),
                mode,
                self._started_at_ms,
                unfinished=[e for e in entries if e.status is LedgerStatus.STARTED],
                held_ms=self._attempts.held_ms,
            )
        )
        log.info("turn.stood_down", **run.correlation.fields(), session_mode=mode.value)
