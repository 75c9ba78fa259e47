"""Waiting out a typing hold: a ready reply kept, uncommitted, while the customer types
(issue 23; the decisions are ``domain.typing_hold``).

When a turn's pipeline finished with a reply while the customer types, its result stays in
the RUNNING turn: ``turn.held`` {cap_ms, typing_at_ms} is committed (fenced), the runtime
reaches ``Phase.TYPING_HOLD``, and the hold waits, the lease renewing (the
``LeaseKeeper``) and the deadline not running (it covers the pipeline only), until the
typing stops or goes stale, the cap, or news that ends it: the attempt's ``Listen`` says
(a new message, the session leaving agent mode). Then ``turn.hold_ended`` {ended, held_ms}
(fenced), and the caller commits, or ends the attempt as ``Listen`` decided. Lease loss
ends it without a word: nothing more can be written.

The customer's typing is the in-process signal (``RuntimeParts.typing``, set by
``Runtime.typing`` while the session's driver is active: embedded mode) or the stored one
(the latest ``typing.started`` / ``typing.stopped`` event: in distributed mode the signal
reached an API process, the turn runs in a worker), whichever is newer
(``RuntimeParts.latest_typing``, which the window reads too). A signal wakes the session
(``Runtime.typing`` notifies while it has unconsumed messages, as a running turn's session
has), so the hold looks again at once.

The cap counts from the turn's first hold: a re-run (attempt > 1: after a crash, a lease
loss or a retry) that holds again starts from the turn's earliest stored ``turn.held``
(its ``turn.held`` says ``since_ms``), so the customer never waits more than
``typing_hold_ms`` for a ready reply however often the turn ran. That lookup is made only
by a re-run about to hold.

A hold is time the reply waited on purpose, not time the turn took to run: the commit's
``run_ms`` and the canary's duration (``RecordFacts.duration_ms``) leave out
``Hold.waited_ms`` (``turn_ending_units.commit``); the record keeps its real start and end,
with ``held_ms`` in its details.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from acf.domain.accumulation import Typing
from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.messages import InboundMessage
from acf.domain.replies import PipelineResult
from acf.domain.supersede import may_commit_with_unseen
from acf.domain.turn_steps import AttemptEnding, default_decision
from acf.domain.typing_hold import HoldEnd, Holding, holds, is_typing, while_held
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.service import turn_progress_units
from acf.service.lease_keeper import LeaseKeeper
from acf.service.running_turn import LeaseLost, RunningTurn
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.runtime")


@dataclass(frozen=True, slots=True)
class Interrupt:
    """News that ends a hold: why, and how the attempt ends instead of committing (None:
    it commits now)."""

    ended: HoldEnd
    ending: AttemptEnding | None = None


Listen = Callable[[int], Awaitable[Interrupt | None]]
"""Told there is news, with the session's last seq when the hold began: an ``Interrupt``
when the news ends the hold (a message after that seq, the mode), else None."""


@dataclass(frozen=True, slots=True)
class Hold:
    """How a hold went: ``held_ms`` 0 and ``ended`` None when the reply was not held."""

    held_ms: int = 0
    """Since the turn was first held (``turn.hold_ended``'s ``held_ms``)."""
    ended: HoldEnd | None = None
    ending: AttemptEnding | None = None
    """How the attempt ends instead of committing (a supersede, a stand-down, lease loss);
    None: it commits."""
    waited_ms: int = 0
    """How long this runner waited in the hold (``held_ms`` less what an earlier run of the
    turn held): the part of this run's time that was no work."""


NO_HOLD = Hold()


async def latest_typing(parts: RuntimeParts, run: RunningTurn) -> Typing | None:
    """The customer's latest typing signal, in this process or stored, whichever is newer."""
    t = run.turn
    return await parts.latest_typing(run.key, t.tenant, t.session_id)


async def first_held_at(parts: RuntimeParts, run: RunningTurn) -> int | None:
    """When the turn was first held (its earliest ``turn.held``), on a re-run; None on a
    first attempt, or when no run of the turn held its reply. A turn holds at most once an
    attempt, and its events are the session's newest: its holds are among the session's
    ``attempt`` newest ``turn.held``."""
    t = run.turn
    if t.attempt <= 1:
        return None
    query = EventQuery(
        session_id=t.session_id,
        kinds=(EventKind.TURN_HELD,),
        limit=t.attempt,
        in_commit_order=False,
        newest_first=True,
    )
    found = await parts.store.events.query(t.tenant, query)
    held = [e.at_ms for e in found if e.correlation.turn_id == t.turn_id]
    return min(held, default=None)


class TypingHold:
    """The hold of one finished attempt's reply (at most one)."""

    def __init__(
        self,
        parts: RuntimeParts,
        run: RunningTurn,
        keeper: LeaseKeeper,
        news: asyncio.Event,
        settings: AgentSettings,
    ) -> None:
        self._parts = parts
        self._run = run
        self._keeper = keeper
        self._news = news
        self._settings = settings
        self._policy = settings.policy_for(run.key.channel)

    async def hold(
        self,
        result: PipelineResult,
        messages: Sequence[InboundMessage],
        restarts: int,
        listen: Listen,
    ) -> Hold:
        """Hold ``result`` (of a turn over ``messages``, its group restarted ``restarts``
        times) while the customer types; how it went. Costs nothing when the hold is off
        (``typing_hold_ms`` 0, OFF) and one read when the customer is not typing."""
        p, run, policy = self._parts, self._run, self._policy
        replay, drafted = run.replay is not None, run.drafted is not None
        if policy.typing_hold_ms <= 0 or run.off or not result.segments or replay or drafted:
            return NO_HOLD
        typing = await latest_typing(p, run)
        now = p.clock.now_ms()
        if not is_typing(policy, typing, now):
            return NO_HOLD  # the common case: one read
        last_seq, new = await run.unseen()
        newest = [m.received_at_ms for m in (*messages, *new)]
        decision = run.news_decision or default_decision(run.off, self._settings)
        doomed = bool(new) and not may_commit_with_unseen(
            decision, run.turn.irreversible_started, restarts, self._settings.restart_bound
        )
        if not holds(
            policy,
            typing,
            now,
            replies=len(result.segments),
            newest_message_ms=max(newest, default=None),
            replay=replay,
            doomed=doomed,
            drafted=drafted,
        ):
            return NO_HOLD
        assert typing is not None
        try:
            return await self._held(typing, now, last_seq, listen)
        except LeaseLost:
            return Hold(ending=AttemptEnding.LEASE_LOST)

    async def _held(self, typing: Typing, now: int, last_seq: int, listen: Listen) -> Hold:
        """The hold itself, from ``now`` (``typing`` started it; the session's last seq
        was ``last_seq``), its cap counted from the turn's first hold: ``turn.held``, the
        checkpoint, the wait, ``turn.hold_ended``."""
        p, run, t = self._parts, self._run, self._run.turn
        earlier = await first_held_at(p, run)
        began = now if earlier is None else min(earlier, now)
        await self._record(
            EventKind.TURN_HELD,
            now,
            cap_ms=self._policy.typing_hold_ms,
            typing_at_ms=typing.at_ms,
            **({} if began == now else {"since_ms": began}),
        )
        log.info("turn.held", **run.correlation.fields(), typing_at_ms=typing.at_ms)
        await p.checkpoints.reached(Phase.TYPING_HOLD, t.tenant, t.session_id)
        current: Typing | None = typing
        while True:
            state = while_held(self._policy, current, began, p.clock.now_ms())
            if isinstance(state, HoldEnd):
                interrupt = Interrupt(state)
                break
            if await self._wait(state):
                self._news.clear()
                heard = await listen(last_seq)
                if heard is not None:
                    interrupt = heard
                    break
            if not self._keeper.held:
                lost_at = p.clock.now_ms()
                return Hold(
                    lost_at - began, ending=AttemptEnding.LEASE_LOST, waited_ms=lost_at - now
                )
            current = await latest_typing(p, run)
        ended_at = p.clock.now_ms()
        held_ms = ended_at - began
        if interrupt.ending is not AttemptEnding.LEASE_LOST:
            await self._record(
                EventKind.TURN_HOLD_ENDED, ended_at, ended=interrupt.ended.value, held_ms=held_ms
            )
        log.info(
            "turn.hold_ended", **run.correlation.fields(), ended=interrupt.ended, held_ms=held_ms
        )
        return Hold(held_ms, interrupt.ended, interrupt.ending, ended_at - now)

    async def _record(self, kind: EventKind, at_ms: int, **data: Any) -> None:
        """One event of the turn, fenced (``LeaseLost`` when the lease is gone)."""
        run = self._run
        await run.commit(
            [
                turn_progress_units.guard_op(run.turn, self._keeper.fence, at_ms),
                turn_progress_units.event_op(kind, run.turn, run.versions, at_ms, **data),
            ]
        )

    async def _wait(self, holding: Holding) -> bool:
        """Wait for news, lease loss or ``holding.until_ms``; whether there is news (and
        the lease still held)."""
        p = self._parts
        waiters = {
            p.tasks.spawn(self._news.wait(), "hold-news"),
            p.tasks.spawn(self._keeper.lost.wait(), "hold-lost"),
            p.tasks.spawn(
                p.clock.sleep(max(0, holding.until_ms - p.clock.now_ms()) / 1000), "hold-timer"
            ),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._keeper.held and self._news.is_set()
