"""One session's work loop: hold the lease, accumulate, run turns, until nothing is left.

DESIGN §4 steps 2-3 and 6. The window's ``close_at`` is stored as a timer so a restart
finds it; the loop sleeps until then unless news (a message, a typing signal) arrives.
The window reads the customer's typing as the typing hold does (``RuntimeParts.
latest_typing``: this process's signal or the stored one, whichever is newer), so a
distributed worker, which hears typing only through the store, holds windows as an
embedded runtime does.

Before going idle (no live turn, nothing unconsumed), the session's dead letters are asked
for a replay that was requested and has not run: it runs at once as a REPLAY turn with an
empty range ``(consumed_seq, consumed_seq]`` (DESIGN §16). A live RUNNING turn with an
empty range is such a replay cut off (a crash): it is run again with the same letter.

Every turn runs under the session's pinned configuration version (DESIGN §17,
``Agents.pinned``), one version from its window's opening to its end, held meanwhile
(``Agents.holding``: its pipelines are not closed under it). The session moves to another
version only as a turn starts, under the lease, and only to the tenant's live version as
the store has it; a session whose version cannot serve it moves to the live version, else
its turn fails as a pipeline error would (``session_repin``). The turn's log lines carry
the version's label and the agent version (structlog contextvars).

Outside agent mode (``acf.domain.modes``) the driver runs no agent turn: a live turn
stands down, a blocked customer's messages are dropped by a DROP turn, and the messages
of a handed-off or cooling-down session wait (``driver_modes``). When a cool-down has
ended, its held messages become ONE agent turn, opened with the cool-down's end in one
unit, whose record says so (category ABUSE_SUSPECTED, ``held_by``); a driver that adopts
such a turn (a crash) learns it from the turn's ``window.opened``.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import structlog

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.pace import Pace, from_state
from acf.domain.policy import AccumulationMode
from acf.domain.session_key import SessionKey
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.claims import SessionClaim
from acf.ports.dead_letters import DeadLetter
from acf.ports.event_store import AppendEvent
from acf.ports.session_store import SessionRecord
from acf.service import turn_progress_units
from acf.service.agents import Pinned
from acf.service.driver_modes import ModeStep, OutsideAgent
from acf.service.lease_keeper import LeaseKeeper
from acf.service.running_turn import LeaseLost
from acf.service.runtime_parts import RuntimeParts
from acf.service.session_repin import SessionRepin, stamp_ops
from acf.service.turn_runner import RunEnd, TurnRunner

log = structlog.get_logger("acf.runtime")


class SessionDriver:
    def __init__(self, parts: RuntimeParts, tenant: TenantId, session_id: SessionId) -> None:
        self._parts = parts
        self._tenant = tenant
        self._session_id = session_id
        self._keeper: LeaseKeeper | None = None
        self._pin = SessionRepin(parts, tenant, session_id)
        self._modes = OutsideAgent(parts, tenant, session_id, self._pin)

    async def drive(self, news: asyncio.Event) -> int | None:
        """Work until idle; returns ms to wait when another holder has the lease."""
        try:
            return await self._loop(news)
        finally:
            if self._keeper is not None:
                # Best effort (a dropped runtime's store refuses it); the lease expires anyway.
                await self._keeper.release()

    async def _loop(self, news: asyncio.Event) -> int | None:
        p = self._parts
        while True:
            news.clear()
            # The lease first: a process that loses the race for it stops here, and what
            # the holder reads next is after the previous holder's last commit.
            held = await self._hold()
            if held is None:
                return await p.held_elsewhere(self._tenant, self._session_id)
            keeper, claim = held
            if claim is not None:  # read with the lease, in its transaction
                session, live = claim.session, claim.live
            else:
                session, live = await asyncio.gather(
                    p.store.sessions.get(self._tenant, self._session_id),
                    p.store.turns.live_turn(self._tenant, self._session_id),
                )
            if session is None:
                return None
            release = False
            if not session.mode.agent_answers:
                try:
                    step = await self._modes.step(session, live, keeper)
                except LeaseLost:
                    await self._lost(keeper)
                    return p.lease.ttl_ms
                if step is ModeStep.IDLE:
                    p.typing.pop(session.key, None)
                    return None
                if step is ModeStep.AGAIN:
                    continue
                release = True  # a cool-down ended with messages held: one agent turn
            replay: DeadLetter | None = None
            if live is None and not session.has_unconsumed:
                replay = await p.store.dead_letters.pending_replay(self._tenant, self._session_id)
                if replay is None:
                    p.typing.pop(session.key, None)
                    return None
            elif live is not None and _is_replay(live):  # a replay cut off (a crash)
                replay = await p.store.dead_letters.pending_replay(self._tenant, self._session_id)
            if live is None:  # a turn starts: the session may move to the live version
                session = await self._pin.repin(session, keeper)
                if session is None:
                    return None
            served = await self._pin.pinned(session, keeper, starting=live is None)
            if served is None:
                return None
            session, pinned = served
            binding = pinned.binding
            with (
                p.agents.holding(self._tenant, pinned.number),  # not closed under the turn
                _logged(
                    tenant=self._tenant,
                    session_id=self._session_id,
                    config_version=pinned.config_version,
                    agent_version=binding.agent_version,
                ),
            ):
                if live is None and release:
                    live = await self._modes.open_held(session, pinned, keeper)
                    if live is None:
                        continue  # the cool-down was extended meanwhile: look again
                elif live is None and replay is not None:
                    live = await self._open_replay(session, binding, keeper, replay)
                elif live is None:
                    live = await self._open_window(session, pinned, keeper)
                if live.phase is TurnPhase.ACCUMULATING:
                    running = await self._accumulate(live, session.key, binding, keeper, news)
                    if running is None:
                        continue
                    live = running
                details = await self._modes.held_by(live, keeper)
                runner = TurnRunner(p, binding, keeper, news, replay, record_details=details)
                end = await runner.run(live, session.key)
            if end is RunEnd.LEASE_LOST:
                await self._lost(keeper)
                return p.lease.ttl_ms

    async def _hold(self) -> tuple[LeaseKeeper, SessionClaim | None] | None:
        """The lease kept (no claim), or newly taken with what it guards, or ``None``."""
        if self._keeper is not None and self._keeper.held:
            return self._keeper, None
        if self._keeper is not None:
            self._keeper.abandon()
            self._keeper = None
        p = self._parts
        claiming = p.store.claims.claim_session(
            self._tenant, self._session_id, p.holder, p.lease.ttl_ms
        )
        held = await LeaseKeeper.claim(p.store.lease, p.clock, p.lease, p.tasks, claiming)
        if held is None:
            return None
        self._keeper = held[0]
        return held

    async def _lost(self, keeper: LeaseKeeper) -> None:
        keeper.abandon()
        self._keeper = None
        p = self._parts
        log.warning(
            "lease.lost", tenant=self._tenant, session_id=self._session_id, fence=keeper.fence
        )
        event = FabricEvent(
            EventKind.LEASE_LOST,
            p.clock.now_ms(),
            Correlation(self._tenant, new_trace_id(), self._session_id),
            {"fence": keeper.fence, "holder": p.holder},
        )
        try:
            await p.store.uow.commit(self._tenant, [AppendEvent(event)])
        except Exception as exc:  # the audit line is best effort; the fence already holds
            log.warning("lease.lost_event_failed", error=repr(exc))

    async def _open_window(
        self, session: SessionRecord, pinned: Pinned, keeper: LeaseKeeper
    ) -> Turn:
        p = self._parts
        binding = pinned.binding
        now = p.clock.now_ms()
        stamp = stamp_ops(session, pinned, now)
        group = TurnGroup(self._tenant, new_id(), self._session_id, GroupStatus.OPEN, 0, 0, now)
        turn = turn_progress_units.new_accumulating_turn(
            session_id=self._session_id,
            tenant=self._tenant,
            turn_id=new_id(),
            group_id=group.group_id,
            trace_id=session.pending_trace_id or new_trace_id(),
            from_seq=session.consumed_seq,
            last_seq=session.last_seq,
            fence=keeper.fence,
            at_ms=now,
        )
        versions = p.versions(binding)
        if binding.settings.policy_for(session.key.channel).mode is AccumulationMode.OFF:
            # Each message is its own turn: the window closes as it opens.
            running, ops = turn_progress_units.open_and_start(
                turn, group, session.consumed_seq + 1, "off", versions
            )
            await p.store.uow.commit(self._tenant, [*ops, *stamp])
            await p.checkpoints.reached(Phase.WINDOW_OPENED, self._tenant, self._session_id)
            await p.checkpoints.reached(Phase.RUN_STARTED, self._tenant, self._session_id)
            return running
        messages = await p.store.messages.read_range(
            self._tenant, self._session_id, session.consumed_seq, session.last_seq
        )
        close = await p.decide_window(
            binding, session.key, self._session_id, messages, *_asked(session), _pace(session)
        )
        await p.store.uow.commit(
            self._tenant,
            [
                *turn_progress_units.open_window(
                    turn, group, close.close_at_ms, close.reason, versions
                ),
                *stamp,
            ],
        )
        await p.checkpoints.reached(Phase.WINDOW_OPENED, self._tenant, self._session_id)
        return turn

    async def _open_replay(
        self,
        session: SessionRecord,
        binding: AgentBinding,
        keeper: LeaseKeeper,
        letter: DeadLetter,
    ) -> Turn:
        """A REPLAY turn of ``letter`` in a new group, RUNNING at once, on the letter's
        trace (its events and spans join the turn that failed)."""
        p = self._parts
        now = p.clock.now_ms()
        group = TurnGroup(self._tenant, new_id(), self._session_id, GroupStatus.OPEN, 0, 0, now)
        turn = turn_progress_units.new_accumulating_turn(
            session_id=self._session_id,
            tenant=self._tenant,
            turn_id=new_id(),
            group_id=group.group_id,
            trace_id=letter.trace_id,
            from_seq=session.consumed_seq,
            last_seq=session.consumed_seq,
            fence=keeper.fence,
            at_ms=now,
        )
        running, ops = turn_progress_units.open_replay(
            turn, group, letter.dead_letter_id, p.versions(binding)
        )
        await p.store.uow.commit(self._tenant, ops)
        log.info(
            "replay.started",
            tenant=self._tenant,
            session_id=self._session_id,
            turn_id=running.turn_id,
            dead_letter_id=letter.dead_letter_id,
        )
        await p.checkpoints.reached(Phase.RUN_STARTED, self._tenant, self._session_id)
        return running

    async def _accumulate(
        self,
        turn: Turn,
        key: SessionKey,
        binding: AgentBinding,
        keeper: LeaseKeeper,
        news: asyncio.Event,
    ) -> Turn | None:
        """Wait for the window to close, then move the turn to RUNNING and return it.
        ``None`` when the lease was lost while waiting, or the session left agent mode (the
        driver then stands the turn down: a window waits for nothing outside agent mode)."""
        p = self._parts
        versions = p.versions(binding)
        timer = await p.store.timers.get(
            self._tenant, self._session_id, turn_progress_units.WINDOW_TIMER
        )
        window_from = (
            int(timer.payload.get("window_from_seq", turn.from_seq)) if timer else turn.from_seq
        )
        stored_close = timer.due_at_ms if timer else None
        while True:
            news.clear()
            session = await p.store.sessions.get(self._tenant, self._session_id)
            assert session is not None
            if not session.mode.agent_answers:
                return None
            messages = await p.store.messages.read_range(
                self._tenant, self._session_id, window_from, session.last_seq
            )
            decision = await p.decide_window(
                binding, key, self._session_id, messages, *_asked(session), _pace(session)
            )
            now = p.clock.now_ms()
            if decision.close_at_ms <= now:
                break
            if decision.close_at_ms != stored_close:
                await p.store.uow.commit(
                    self._tenant,
                    turn_progress_units.extend_window(
                        turn,
                        keeper.fence,
                        decision.close_at_ms,
                        window_from,
                        decision.reason,
                        now,
                        versions,
                    ),
                )
                stored_close = decision.close_at_ms
            if not await _wait(p, news, keeper, decision.close_at_ms - now):
                return None
        group = await p.store.turns.get_group(self._tenant, turn.group_id)
        assert group is not None
        off = binding.settings.policy_for(key.channel).mode is AccumulationMode.OFF
        to_seq = turn.from_seq + 1 if off else session.last_seq
        await p.store.uow.commit(
            self._tenant,
            turn_progress_units.start_run(
                turn, group, keeper.fence, to_seq, decision.reason, now, versions
            ),
        )
        await p.checkpoints.reached(Phase.RUN_STARTED, self._tenant, self._session_id)
        return replace(
            turn,
            phase=TurnPhase.RUNNING,
            to_seq=to_seq,
            attempt=turn.attempt + 1,
            fence=keeper.fence,
        )


async def _wait(p: RuntimeParts, news: asyncio.Event, keeper: LeaseKeeper, ms: int) -> bool:
    """Wait for news or ``ms``; returns whether the lease is still held."""
    loop = asyncio.get_running_loop()
    waiters = {
        loop.create_task(news.wait()),
        loop.create_task(keeper.lost.wait()),
        loop.create_task(p.clock.sleep(ms / 1000)),
    }
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return keeper.held


def _is_replay(turn: Turn) -> bool:
    """Only a REPLAY turn runs over an empty range: a window holds at least one message."""
    return turn.phase is TurnPhase.RUNNING and turn.from_seq == turn.to_seq


@contextmanager
def _logged(**fields: str) -> Iterator[None]:
    """Every log line written meanwhile carries ``fields`` (structlog contextvars)."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def _asked(session: SessionRecord) -> tuple[bool, bool]:
    """What the last reply asked that the customer's next message answers: a pending
    confirmation (a lone unambiguous answer closes the window at once), and a question the
    agent awaits (``PipelineResult.awaiting_answer``: any message closes it)."""
    meta = session.state.get("meta", {})
    return bool(meta.get("confirmation")), bool(meta.get("awaiting_answer"))


def _pace(session: SessionRecord) -> Pace | None:
    """The customer's pace between fragments, as the agent's commits learned it
    (``meta.pace``; the window uses it when the channel's ``pace`` is on)."""
    return from_state(session.state.get("meta", {}).get("pace"))
