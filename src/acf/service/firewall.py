"""The abuse firewall (DESIGN §15): counts every accepted message of a customer, runs the
detectors of ``acf.domain.abuse`` on the sessions the agent answers, and holds a session
that trips one in a cool-down, or puts a customer who keeps tripping them on the block list.

Nothing here may cost a message: ingress calls ``after_accept`` once the message is
committed, and a failure of the counters (Redis, the store) only skips the detectors for
that message (logged). The cool-down is per session, the counters per customer and channel
(every agent's sessions count together).

Two tallies of the firewall's own live in the store's counters whatever counts the
messages: the customer's refusals (``policy_blocks``: ``refusal_ops`` reads them and its
``CountCustomer`` rides in the refusing turn's unit) and their cool-downs in the UTC day
(counted by ``StartCooldown`` when a session enters one; after ``auto_block_after`` of
them, the next finding blocks instead, ``created_by="firewall"``, for ``auto_block_ms``).
Both are read in read transactions (``CustomerRates.tallies``).

What one accepted message costs: the count (one write), the recent messages only when a
message detector is on, and the session's ``mode_since_ms`` only when one fired on them
(it can only take the finding away: messages from before the session last entered agent
mode do not count).
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from acf.domain.abuse import (
    DAY_MS,
    MESSAGE_DETECTORS,
    RECENT_MESSAGES,
    AbuseRules,
    Finding,
    Said,
    cooldown_until,
    inspect,
    policy_blocks,
    reads_messages,
)
from acf.domain.channels import Channel
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.handoff import PeoplePolicies
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.messages import AppendResult
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.firewall import (
    COOLDOWN_BUCKET,
    REFUSAL_BUCKET,
    Block,
    BlockCustomer,
    CountCustomer,
    CustomerRates,
    LiftBlock,
)
from acf.ports.session_modes import StartCooldown
from acf.ports.session_store import SessionFilter, SessionStatus
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

log = structlog.get_logger("acf.firewall")

FIREWALL = "firewall"
"""``created_by`` of an automatic block."""

Wake = Callable[[TenantId, SessionId], Awaitable[None]]


class Firewall:
    """Implements ``acf.ports.firewall.PolicyBlocks``; see the module."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        people: PeoplePolicies,
        rates: CustomerRates,
        *,
        wake: Wake | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._people = people
        self._rates = rates
        self._wake = wake

    def rules(self, tenant: TenantId) -> AbuseRules:
        return self._people(tenant).firewall

    async def after_accept(
        self, key: SessionKey, accepted: AppendResult, trace_id: str
    ) -> str | None:
        """Count the accepted message and, in a session the agent answers, inspect it (a
        re-delivery is neither counted nor inspected). Returns the mode the message put its
        session in (``cooldown``, ``blocked``), if it did."""
        rules = self.rules(key.tenant)
        if accepted.duplicate or not rules.enabled:
            return None
        now = self._clock.now_ms()
        try:
            counts = await self._rates.hit(key.tenant, key.channel, key.customer, now)
        except Exception as exc:  # the message is stored: it only goes uninspected
            log.warning(
                "firewall.count_failed",
                tenant=key.tenant,
                session_id=accepted.session_id,
                trace_id=trace_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        if accepted.held is not None:
            return None  # held already (cool-down, human, blocked): counted, not judged
        said: list[Said] = []
        if reads_messages(rules):
            recent = await self._store.messages.recent(
                key.tenant, accepted.session_id, accepted.seq, RECENT_MESSAGES
            )
            said = [Said(m.received_at_ms, m.text) for m in recent]
        finding = inspect(rules, key.channel.value, counts, said)
        if finding is not None and finding.detector in MESSAGE_DETECTORS:
            # Only what the customer sent since the session last entered agent mode counts.
            session = await self._store.sessions.get(key.tenant, accepted.session_id)
            since = None if session is None else session.mode_since_ms
            if since is not None:
                finding = inspect(rules, key.channel.value, counts, said, since)
        if finding is None:
            return None
        return await self._act(key, accepted.session_id, finding, rules, now, trace_id)

    async def refusal_ops(
        self, key: SessionKey, session_id: SessionId, at_ms: int, trace_id: str
    ) -> Sequence[WriteOp[Any]]:
        """Count the refusal; when ``policy_blocks`` fires, the cool-down's ops (or the
        automatic block's) for the turn's unit. A failure to count costs the turn nothing:
        logged, no ops."""
        try:
            return await self._refusal_ops(key, session_id, at_ms, trace_id)
        except Exception as exc:
            log.warning(
                "firewall.refusal_count_failed",
                tenant=key.tenant,
                session_id=session_id,
                trace_id=trace_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return ()

    async def _refusal_ops(
        self, key: SessionKey, session_id: SessionId, at_ms: int, trace_id: str
    ) -> Sequence[WriteOp[Any]]:
        rules = self.rules(key.tenant)
        rule = rules.policy_blocks
        if not rules.enabled or not rule.enabled:
            return ()
        start = at_ms - at_ms % rule.within_ms
        this, before, cooldowns = await self._rates.tallies(
            key.tenant,
            key.channel,
            key.customer,
            [
                (REFUSAL_BUCKET, start),
                (REFUSAL_BUCKET, start - rule.within_ms),
                (COOLDOWN_BUCKET, _day(at_ms)),
            ],
        )
        # Counted in the turn's unit: a turn that never commits counts nothing.
        count = CountCustomer(key.tenant, key.channel, key.customer, REFUSAL_BUCKET, start)
        weight = 1.0 - (at_ms - start) / rule.within_ms
        finding = policy_blocks(this + 1 + before * weight, rule)
        if finding is None:
            return [count]
        if 0 < rules.auto_block_after <= cooldowns:
            return [
                count,
                *self._block_ops(key, session_id, finding, rules, cooldowns, at_ms, trace_id),
            ]
        return [count, self._cooldown(key, session_id, finding, rules, at_ms, trace_id)]

    async def wake_blocked(self, block: Block) -> None:
        """Wake the block's customer's open sessions on its channel. The block is
        committed: a failure here is logged (the mode watch's sweeps still reach them)."""
        try:
            await self._wake_sessions(block)
        except Exception as exc:
            log.warning(
                "firewall.wake_failed",
                tenant=block.tenant,
                block_id=block.block_id,
                error=f"{type(exc).__name__}: {exc}",
            )

    async def block(
        self,
        tenant: TenantId,
        channel: Channel,
        customer: str,
        reason: str,
        by: str,
        *,
        expires_at_ms: int | None = None,
        trace_id: str | None = None,
    ) -> Block:
        """Put the customer on the block list (``Conflict("blocked")`` if they are) and wake
        their sessions, so a running turn stands down and what they hold is dropped."""
        op = BlockCustomer(
            tenant,
            new_id(),
            channel,
            customer,
            reason,
            created_by=by,
            at_ms=self._clock.now_ms(),
            trace_id=trace_id or new_trace_id(),
            expires_at_ms=expires_at_ms,
        )
        block = (await self._store.uow.commit(tenant, [op])).get(op)
        await self._wake_sessions(block)
        return block

    async def lift(
        self, tenant: TenantId, block_id: str, by: str, *, trace_id: str | None = None
    ) -> Block:
        """Lift the block (``Conflict("not_found")`` for an unknown or lifted one) and wake
        the customer's sessions, back in agent mode."""
        op = LiftBlock(tenant, block_id, by, self._clock.now_ms(), trace_id or new_trace_id())
        block = (await self._store.uow.commit(tenant, [op])).get(op)
        await self._wake_sessions(block)
        return block

    async def _act(
        self,
        key: SessionKey,
        session_id: SessionId,
        finding: Finding,
        rules: AbuseRules,
        now: int,
        trace_id: str,
    ) -> str | None:
        """Hold the session, or block the customer; the mode it put the session in."""
        uow = self._store.uow
        had = await self._cooldowns_today(key, rules, now)
        if had is not None:
            ops = self._block_ops(key, session_id, finding, rules, had, now, trace_id)
            results = await uow.commit(key.tenant, ops)
            log.warning(
                "firewall.blocked",
                tenant=key.tenant,
                session_id=session_id,
                trace_id=trace_id,
                detector=finding.detector.value,
            )
            blocking = next(op for op in ops if isinstance(op, BlockCustomer))
            await self._wake_sessions(results.get(blocking))
            return SessionMode.BLOCKED.value
        # StartCooldown counts the cool-down in the customer's day when it starts one.
        op = self._cooldown(key, session_id, finding, rules, now, trace_id)
        started = (await uow.commit(key.tenant, [op])).get(op)
        log.info(
            "firewall.cooldown" if started else "firewall.suspected",
            tenant=key.tenant,
            session_id=session_id,
            trace_id=trace_id,
            detector=finding.detector.value,
            until_ms=op.until_ms,
        )
        return SessionMode.COOLDOWN.value if started else None

    async def _cooldowns_today(self, key: SessionKey, rules: AbuseRules, at_ms: int) -> int | None:
        """The customer's cool-downs today when they reached ``auto_block_after`` (the next
        finding blocks), else None."""
        if rules.auto_block_after <= 0:
            return None
        (had,) = await self._rates.tallies(
            key.tenant, key.channel, key.customer, [(COOLDOWN_BUCKET, _day(at_ms))]
        )
        return had if had >= rules.auto_block_after else None

    @staticmethod
    def _cooldown(
        key: SessionKey,
        session_id: SessionId,
        finding: Finding,
        rules: AbuseRules,
        at_ms: int,
        trace_id: str,
    ) -> StartCooldown:
        return StartCooldown(
            key.tenant,
            session_id,
            until_ms=cooldown_until(finding, rules, at_ms),
            detector=finding.detector.value,
            detail=finding.detail,
            at_ms=at_ms,
            trace_id=trace_id,
            notice=rules.notice,
        )

    @staticmethod
    def _block_ops(
        key: SessionKey,
        session_id: SessionId,
        finding: Finding,
        rules: AbuseRules,
        cooldowns: int,
        at_ms: int,
        trace_id: str,
    ) -> list[WriteOp[Any]]:
        """The automatic block, audited: ``abuse.suspected`` (action ``block``) and
        ``BlockCustomer`` by ``firewall`` for ``rules.auto_block_ms`` (an active block is
        kept as it is)."""
        return [
            AppendEvent(
                FabricEvent(
                    kind=EventKind.ABUSE_SUSPECTED,
                    at_ms=at_ms,
                    correlation=Correlation(key.tenant, trace_id, session_id),
                    data={
                        "detector": finding.detector.value,
                        "detail": finding.detail,
                        "customer": key.customer,
                        "channel": key.channel.value,
                        "action": "block",
                        "cooldowns_today": cooldowns,
                    },
                )
            ),
            BlockCustomer(
                key.tenant,
                new_id(),
                key.channel,
                key.customer,
                reason=(
                    f"{finding.detector.value} after {cooldowns} cool-downs today: {finding.detail}"
                ),
                created_by=FIREWALL,
                at_ms=at_ms,
                trace_id=trace_id,
                expires_at_ms=None if rules.auto_block_ms is None else at_ms + rules.auto_block_ms,
                existing_ok=True,
            ),
        ]

    async def _wake_sessions(self, block: Block) -> None:
        if self._wake is None:
            return
        sessions = await self._store.sessions.list_sessions(
            block.tenant, SessionFilter(status=SessionStatus.OPEN, customer=block.customer)
        )
        for session in sessions:
            if session.key.channel is block.channel:
                await self._wake(block.tenant, session.session_id)


def _day(at_ms: int) -> int:
    return at_ms - at_ms % DAY_MS
