"""Running one RUNNING turn to its end: the loop of the turn engine's state machine.

Each attempt ends in an ``AttemptOutcome`` (``pipeline_attempt``); the pure
``domain.turn_steps.after_attempt`` turns it into the next step, which this loop carries
out: commit, supersede, retry after a pause, fail, stand down (the session left agent
mode), or abandon the turn with the lease (DESIGN §4 steps 3-4, §6 and §15; the table is
in docs/architecture.md). The runner holds the session lease (through a ``LeaseKeeper``)
for the whole run; every unit is fenced. A turn about to run again (a retry, a turn
adopted from a dead holder) whose session left agent mode stands down instead.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Any

from acf.domain.policy import AccumulationMode
from acf.domain.session_key import SessionKey
from acf.domain.turn_steps import (
    Abandon,
    Commit,
    Fail,
    InDoubt,
    Retry,
    StandDown,
    Supersede,
    after_attempt,
    on_adoption,
)
from acf.domain.turns import Turn
from acf.observability.trace_context import traced
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.dead_letters import DeadLetter
from acf.service import turn_progress_units
from acf.service.irreversible_gate import IrreversibleGate
from acf.service.lease_keeper import LeaseKeeper
from acf.service.pipeline_attempt import PipelineAttempt
from acf.service.running_turn import LeaseLost, RunningTurn
from acf.service.runtime_parts import RuntimeParts
from acf.service.turn_outcomes import TurnOutcomes


class RunEnd(StrEnum):
    COMMITTED = "committed"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    LEASE_LOST = "lease_lost"
    STOOD_DOWN = "stood_down"
    """The session left agent mode: the turn ended SUPERSEDED without a reply, its group
    HANDED_OFF."""


class TurnRunner:
    def __init__(
        self,
        parts: RuntimeParts,
        binding: AgentBinding,
        keeper: LeaseKeeper,
        news: asyncio.Event,
        replay: DeadLetter | None = None,
        record_details: Mapping[str, Any] | None = None,
    ) -> None:
        """``replay``: the dead letter a REPLAY turn runs again (its range is empty);
        ``record_details``: added to the committed turn's record details (the driver's
        account of messages a cool-down held, say)."""
        self._parts = parts
        self._replay = replay
        self._record_details = dict(record_details or {})
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
        off = self._settings.policy_for(key.channel).mode is AccumulationMode.OFF
        run = RunningTurn(
            turn, key, p.store, p.clock, p.tasks, self._keeper, self._versions, p.checkpoints, off
        )
        run.replay = self._replay
        gate = IrreversibleGate(run)
        attempts = PipelineAttempt(p, self._binding, self._keeper, self._news, run, gate)
        ends = TurnOutcomes(p, self._binding, run, attempts, p.clock.now_ms(), self._record_details)
        try:
            if turn.fence != self._keeper.fence:
                adopted = on_adoption(turn.attempt, self._settings)
                if isinstance(adopted, Fail):
                    return RunEnd.FAILED if await ends.fail(adopted.reason) else RunEnd.STOOD_DOWN
                if await self._stood_down(ends):
                    return RunEnd.STOOD_DOWN
                await self._rerun(run, ends, "recovered")
            while True:
                attempt = await attempts.run()
                step = after_attempt(attempt.outcome, self._settings)
                if isinstance(step, Commit):
                    assert attempt.finished is not None  # Commit follows FINISHED only
                    refused = await ends.commit(attempt.finished)
                    if refused is None:
                        return RunEnd.COMMITTED
                    step = refused
                end = await self._carry_out(step, run, ends)
                if end is not None:
                    return end
        except LeaseLost:
            return RunEnd.LEASE_LOST

    async def _carry_out(
        self,
        step: Supersede | Retry | Fail | InDoubt | StandDown | Abandon,
        run: RunningTurn,
        ends: TurnOutcomes,
    ) -> RunEnd | None:
        """Carry a step other than a commit out; None when the turn runs again."""
        if isinstance(step, Abandon):
            return RunEnd.LEASE_LOST
        if isinstance(step, Supersede):
            await ends.supersede(step.reason)
            return RunEnd.SUPERSEDED
        if isinstance(step, StandDown):
            await ends.stand_down(step.mode)
            return RunEnd.STOOD_DOWN
        error = step.error if isinstance(step, Retry) else step.reason
        p = self._parts
        await run.commit(
            turn_progress_units.attempt_failed(
                run.turn, self._keeper.fence, error, p.clock.now_ms(), self._versions
            )
        )
        if isinstance(step, Fail | InDoubt):
            return RunEnd.FAILED if await ends.fail(error) else RunEnd.STOOD_DOWN
        if not await self._pause(step.after_ms):
            return RunEnd.LEASE_LOST
        if await self._stood_down(ends):
            return RunEnd.STOOD_DOWN
        await self._rerun(run, ends, "retry")
        return None

    async def _stood_down(self, ends: TurnOutcomes) -> bool:
        """Stand the turn down instead of running it again when its session left agent
        mode (and it has not passed the irreversible gate); whether it did."""
        mode = await ends.left_agent_mode()
        if mode is None:
            return False
        await ends.stand_down(mode)
        return True

    async def _rerun(self, run: RunningTurn, ends: TurnOutcomes, reason: str) -> None:
        group = await ends.group()
        now = self._parts.clock.now_ms()
        fence = self._keeper.fence
        await run.commit(
            turn_progress_units.rerun(run.turn, group, fence, reason, now, self._versions)
        )
        run.turn = replace(run.turn, attempt=run.turn.attempt + 1, fence=fence)
        await self._parts.checkpoints.reached(
            Phase.RUN_STARTED, run.turn.tenant, run.turn.session_id
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
