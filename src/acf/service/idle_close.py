"""Idle close: sessions idle past their channel's timeout close (DESIGN §15).

Every process that works (embedded, distributed worker) sweeps every ``interval_ms``: the
recovery scanner lists open sessions with nothing left to do, idle since at least the
shortest timeout any channel policy of this process has (``idle_floor_ms``), longest idle
first; each that is due by its own channel's policy is closed under its session lease:

1. the lease is taken as a session driver takes it (``Claims.claim_session``: a new fence,
   and the session and its live turn read in that transaction). A lease held by anyone —
   a driver running or accumulating a turn, another sweep — means "not now": the session
   is looked at again at the next sweep. While the sweep holds it no turn can start;
2. the decision (``acf.domain.idle_close.decide_close``) is made on what was read under
   the lease, with the undelivered replies and a requested replay;
3. ``CloseSession`` commits together with ``CheckFence``, the guard of every turn write: a
   take-over meanwhile refuses the close, and the store refuses it too if a message
   arrived (``last_seq`` moved), a turn went live, a reply was queued or a replay was
   requested (the scan's guards, again in the close's statement). ``session.closed`` is
   appended in the same transaction;
4. the lease is released. If the session did not close and has work (a message that
   raced the close, a live turn left by a dead holder, a requested replay), its wake-up
   is published, so a driver that found the lease held during those milliseconds does
   not wait for the lease to expire.

Which policy decides: the version the session is pinned to (``Agents.pinned``), never the
live one (a session pinned to a version with a shorter timeout closes on time). When that
version cannot be had in this process (it does not build here, the store is away), the
session is held, not closed by a fallback timeout (a 7-day timeout must not become acf's
24 h on one worker): ``session_timeout_ms``. The scan
selects by the floor only; each candidate's own timeout is read first without the lease
(a plain read, so sessions not yet due cost no lease write), then decided again under it.

Only a session in agent mode closes (``acf.domain.modes``): one handed to a person, held in
a cool-down or blocked stays open whatever its idleness (the scan lists none, the close
under the lease checks again, and ``CheckMode`` in the close's unit refuses a mode that
changed since), until its mode ends.

A closed session's messages, turns and events stay readable; the next message for its
key opens a new session (``open_session_id`` selects only an open one), with a fresh
history window and the then-live configuration version.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import structlog

from acf.domain.channels import Channel
from acf.domain.errors import AcfError, Conflict, UnknownAgent, UnknownTenant
from acf.domain.idle_close import CloseDecision, Hold, SessionActivity, decide_close
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.domain.modes import SessionMode
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, ChannelPolicy
from acf.domain.turns import Turn
from acf.observability.redaction import error_text
from acf.ports.lease import CheckFence, Lease
from acf.ports.recovery import IdleSession
from acf.ports.session_modes import CheckMode
from acf.ports.session_store import CloseSession, SessionRecord, SessionStatus
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.runtime")

CLOSE_REASON = "idle"

Wake = Callable[[TenantId, SessionId], Awaitable[None]]
Busy = Callable[[TenantId, SessionId], bool]


@dataclass(frozen=True, slots=True)
class IdleCloseSettings:
    interval_ms: int = 60_000
    """How often the sweep runs: a session closes at most this late after its timeout."""
    batch: int = 1_000
    """Candidates read per page of the scan."""
    pages: int = 10
    """Pages one sweep reads at most; the next sweep goes on from there."""

    def __post_init__(self) -> None:
        if min(self.interval_ms, self.batch, self.pages) <= 0:
            raise ValueError("idle close: interval_ms, batch and pages must be positive")


@runtime_checkable
class ServesPolicies(Protocol):
    """What the agents catalog tells the sweep: every channel policy of every binding it
    serves (each configuration version it loaded)."""

    def channel_policies(self) -> Iterable[ChannelPolicy]: ...


def idle_floor_ms(agents: object) -> int:
    """The shortest idle timeout a session served by ``agents`` may have: the scan lists
    sessions idle at least this long (acf's defaults when the catalog cannot say)."""
    policies = list(DEFAULT_CHANNEL_POLICIES.values())
    if isinstance(agents, ServesPolicies):
        policies.extend(agents.channel_policies())
    return min(p.idle_timeout_s for p in policies) * 1000


def activity_of(
    session: SessionRecord, live: Turn | None, undelivered: bool, replay_pending: bool
) -> SessionActivity:
    """The decision's view of ``session`` (read under its lease)."""
    confirmation = (session.state.get("meta") or {}).get("confirmation")
    expires = None if not confirmation else int(confirmation["expires_at_ms"])
    return SessionActivity(
        open=session.status is SessionStatus.OPEN,
        last_activity_ms=session.updated_at_ms,
        unconsumed=session.has_unconsumed,
        live_turn=live is not None,
        undelivered=undelivered,
        replay_pending=replay_pending,
        confirmation_expires_at_ms=expires,
    )


class IdleCloser:
    """The sweep of one process. ``wake`` publishes a session's wake-up (wherever its driver
    runs); ``busy`` says whether this process has a driver on the session now."""

    def __init__(
        self, parts: RuntimeParts, settings: IdleCloseSettings, wake: Wake, busy: Busy
    ) -> None:
        self._parts = parts
        self._settings = settings
        self._wake = wake
        self._busy = busy
        self._holder = f"{parts.holder}/idle-close"
        self._cursor: tuple[int, TenantId, SessionId] | None = None

    async def run(self) -> None:
        """Sweep every ``interval_ms`` until cancelled; a failed sweep is tried again at the
        next interval."""
        while True:
            await self._parts.clock.sleep(self._settings.interval_ms / 1000)
            try:
                await self.sweep()
            except Exception as exc:  # the store is away: the next sweep tries again
                log.warning("idle_close.failed", error=error_text(exc))

    def timeout_ms(self, tenant: TenantId, agent: AgentId, channel: Channel) -> int:
        """The channel's timeout by the agent's live binding; acf's default for the channel
        when the agent is not served (what decides when the pinned version cannot)."""
        try:
            policy = self._parts.agents.get(tenant, agent).settings.policy_for(channel)
        except (UnknownTenant, UnknownAgent):
            policy = DEFAULT_CHANNEL_POLICIES[channel]
        return policy.idle_timeout_s * 1000

    async def session_timeout_ms(self, session: SessionRecord) -> int | None:
        """The timeout of the session's channel by the version it is pinned to (what
        decides). None: hold the session (not closed this sweep) — its version, or its
        tenant's live version when it is not pinned, cannot be had in this process (not
        built here, missing, the store away), so no fallback timeout may close it early;
        a process that has the version decides, or this one at a later sweep. The live
        binding's (else acf's default) only when the tenant has no version, or the version
        was had and does not serve the session's agent (every process agrees on that)."""
        key = session.key
        agents = self._parts.agents
        try:
            binding = (await agents.pinned(session)).binding
        except AcfError as exc:
            if await self._version_wanted(session, exc):
                self._log_held(session, exc)
                return None
            log.info(
                "idle_close.unpinned",
                tenant=key.tenant,
                session_id=session.session_id,
                error=error_text(exc),
            )
            return self.timeout_ms(key.tenant, key.agent, key.channel)
        if session.config_version is None and await self._live_unbuilt(key.tenant):
            self._log_held(session, None)  # served by the file, not the tenant's live version
            return None
        return binding.settings.policy_for(key.channel).idle_timeout_s * 1000

    async def _version_wanted(self, session: SessionRecord, error: AcfError) -> bool:
        """Whether ``pinned`` failed because the version that decides could not be had here
        (rather than the version, had, not serving the agent)."""
        if session.config_version is None:
            return await self._live_unbuilt(session.tenant)
        # Pinned: only a version built here can say UnknownAgent; anything else (missing,
        # unbuilt, versions not served by this process, the store away) is not having it.
        return not (self._parts.agents.versioned and isinstance(error, UnknownAgent))

    async def _live_unbuilt(self, tenant: TenantId) -> bool:
        """The tenant has a live version that this process does not serve (yet)."""
        agents = self._parts.agents
        if not agents.versioned or agents.pointer(tenant) is not None:
            return False
        pointer = await self._parts.store.config_versions.pointer(tenant)
        return pointer is not None and pointer.live is not None

    def _log_held(self, session: SessionRecord, error: AcfError | None) -> None:
        log.warning(
            "idle_close.held",
            tenant=session.tenant,
            session_id=session.session_id,
            config_version=session.config_version,
            reason="its configuration version cannot be had in this process",
            error=None if error is None else error_text(error),
        )

    async def sweep(self) -> int:
        """Close the sessions that are due now; returns how many closed."""
        p = self._parts
        now = p.clock.now_ms()
        before = now - idle_floor_ms(p.agents)
        closed = 0
        for _ in range(self._settings.pages):
            page = await p.store.recovery.idle_sessions(
                before, self._settings.batch, after=self._cursor
            )
            for candidate in page:
                tenant, session_id = candidate.tenant, candidate.session_id
                if self._busy(tenant, session_id):
                    continue
                try:
                    if not await self._due(candidate, now):
                        continue
                    decision = await self.close_if_idle(tenant, session_id)
                except Exception as exc:  # one session's trouble stops no other's close
                    log.warning(
                        "idle_close.session_failed",
                        tenant=tenant,
                        session_id=session_id,
                        error=error_text(exc),
                    )
                    continue
                if decision is not None and decision.close:
                    closed += 1
            if len(page) < self._settings.batch:
                self._cursor = None
                break
            self._cursor = page[-1].cursor
        if closed:
            log.info("idle_close.swept", closed=closed, holder=self._holder)
        return closed

    async def _due(self, candidate: IdleSession, now: int) -> bool:
        """Whether the candidate's timeout, by the version its session is pinned to, has
        passed (read without the lease: the close decides again under it)."""
        p = self._parts
        session = await p.store.sessions.get(candidate.tenant, candidate.session_id)
        if session is None or session.status is not SessionStatus.OPEN:
            return False
        if not session.mode.agent_answers:
            return False  # a person, a cool-down or a block holds it: not idle
        timeout = await self.session_timeout_ms(session)
        return timeout is not None and now >= candidate.idle_since_ms + timeout

    async def close_if_idle(self, tenant: TenantId, session_id: SessionId) -> CloseDecision | None:
        """Close the session if it is due, under its lease. ``None`` when it could not be
        looked at (its lease is held, it does not exist, it changed under the close, or its
        configuration version cannot be had here: held)."""
        p = self._parts
        claim = await p.store.claims.claim_session(tenant, session_id, self._holder, p.lease.ttl_ms)
        if claim is None:
            return None  # someone works on it: not idle now
        try:
            decision = await self._close_held(claim.lease, claim.session, claim.live)
        finally:
            with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                await p.store.lease.release(claim.lease)
        if decision is None or not decision.close:
            # Work found under the lease, or a message that came while the lease was ours
            # (its driver found the lease held): wake the session's driver now rather than
            # when the lease would have expired.
            turn_work = decision is not None and decision.hold in (Hold.LIVE_TURN, Hold.REPLAY)
            if turn_work or await self._has_unconsumed(tenant, session_id):
                await self._wake(tenant, session_id)
        return decision

    async def _close_held(
        self, lease: Lease, session: SessionRecord | None, live: Turn | None
    ) -> CloseDecision | None:
        """Decide with what the claim read, and close if due (``None``: the store refused,
        or the session is not in agent mode)."""
        if session is None or not session.mode.agent_answers:
            return None
        p = self._parts
        tenant, session_id = session.tenant, session.session_id
        undelivered, replay = await asyncio.gather(
            p.store.outbox.undelivered(tenant, session_id),
            p.store.dead_letters.pending_replay(tenant, session_id),
        )
        activity = activity_of(session, live, bool(undelivered), replay is not None)
        timeout = await self.session_timeout_ms(session)
        if timeout is None:
            return None  # held: its version cannot be had here (logged)
        now = p.clock.now_ms()
        decision = decide_close(activity, timeout, now)
        if not decision.close:
            return decision
        try:
            await p.store.uow.commit(
                tenant,
                [
                    CheckFence(session_id, lease.fence, now),
                    CheckMode(session_id, SessionMode.AGENT),
                    CloseSession(tenant, session_id, now, CLOSE_REASON, decision.idle_since_ms),
                ],
            )
        except Conflict as exc:  # a message, a turn, a mode or a take-over got there first
            log.info("idle_close.raced", tenant=tenant, session_id=session_id, reason=str(exc))
            return None
        log.info(
            "session.closed",
            tenant=tenant,
            session_id=session_id,
            idle_since_ms=decision.idle_since_ms,
            idle_timeout_ms=timeout,
        )
        return decision

    async def _has_unconsumed(self, tenant: TenantId, session_id: SessionId) -> bool:
        session = await self._parts.store.sessions.get(tenant, session_id)
        return session is not None and session.has_unconsumed
