"""The abuse firewall (DESIGN §15): counts every accepted message of a customer, runs the
detectors of ``acf.domain.abuse`` on the sessions the agent answers, and holds a session
that trips one in a cool-down, or puts a customer who keeps tripping them on the block list.

Nothing here may cost a message: ingress calls ``after_accept`` once the message is
committed, and a failure of the counters (Redis, the store) only skips the detectors for
that message (logged). The cool-down is per session, the counters per customer and channel
(every agent's sessions count together).

Two tallies of the firewall's own live in the store's counters whatever counts the
messages (``CountCustomer``): the customer's refusals (``policy_blocks``, counted by a
turn's commit through ``refusal_ops``) and their cool-downs in the UTC day (at
``auto_block_after`` of them, the next finding blocks instead, ``created_by="firewall"``).
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from acf.domain.abuse import (
    DAY_MS,
    AbuseRules,
    Finding,
    Said,
    cooldown_until,
    inspect,
    policy_blocks,
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
from acf.ports.firewall import Block, BlockCustomer, CountCustomer, CustomerRates, LiftBlock
from acf.ports.session_modes import StartCooldown
from acf.ports.session_store import SessionFilter, SessionStatus
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

log = structlog.get_logger("acf.firewall")

RECENT = 20
"""How many of the session's newest messages the detectors read."""
COOLDOWNS = "cooldown"
"""The counter bucket of a customer's cool-downs in a UTC day."""
REFUSALS = "refusal"
"""The counter bucket of a customer's refusals (one per ``policy_blocks.within_ms``)."""
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
        recent = await self._store.messages.recent(
            key.tenant, accepted.session_id, accepted.seq, RECENT
        )
        said = [Said(m.received_at_ms, m.text) for m in recent]
        finding = inspect(rules, key.channel.value, counts, said)
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
        this = CountCustomer(key.tenant, key.channel, key.customer, REFUSALS, start)
        before = CountCustomer(
            key.tenant, key.channel, key.customer, REFUSALS, start - rule.within_ms, by=0
        )
        counted = await self._store.uow.commit(key.tenant, [this, before])
        weight = 1.0 - (at_ms - start) / rule.within_ms
        finding = policy_blocks(counted.get(this) + counted.get(before) * weight, rule)
        if finding is None:
            return ()
        had = await self._cooldowns_today(key, rules, at_ms)
        if had is not None:
            return self._block_ops(key, session_id, finding, had, at_ms, trace_id)
        return [
            self._cooldown(key, session_id, finding, rules, at_ms, trace_id),
            # Counted with the cool-down: the turn's unit commits both or neither.
            CountCustomer(key.tenant, key.channel, key.customer, COOLDOWNS, _day(at_ms)),
        ]

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
            ops = self._block_ops(key, session_id, finding, had, now, trace_id)
            await uow.commit(key.tenant, ops)
            log.warning(
                "firewall.blocked",
                tenant=key.tenant,
                session_id=session_id,
                trace_id=trace_id,
                detector=finding.detector.value,
            )
            return SessionMode.BLOCKED.value
        op = self._cooldown(key, session_id, finding, rules, now, trace_id)
        started = (await uow.commit(key.tenant, [op])).get(op)
        if started:
            count = CountCustomer(key.tenant, key.channel, key.customer, COOLDOWNS, _day(now))
            await uow.commit(key.tenant, [count])
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
        read = CountCustomer(key.tenant, key.channel, key.customer, COOLDOWNS, _day(at_ms), by=0)
        had = (await self._store.uow.commit(key.tenant, [read])).get(read)
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
        cooldowns: int,
        at_ms: int,
        trace_id: str,
    ) -> list[WriteOp[Any]]:
        """The automatic block, audited: ``abuse.suspected`` (action ``block``) and
        ``BlockCustomer`` by ``firewall`` (an active block is kept as it is)."""
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
