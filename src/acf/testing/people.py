"""People acting on a harness's sessions (issue #22): an operator through the real desk
(``acf.service.operator_desk.OperatorDesk``: hand off, claim, reply, release, resume) and
the block list through the real firewall (``Harness.firewall``: block, unblock).

Each action runs as the product runs it, on the harness's store and clock, and wakes the
session; the harness then settles. An action that waits on the clock (a reply waiting for
the session's lease) gets the virtual time it needs: the clock moves to each due sleeper
until the action is done, as ``Harness.advance`` moves it.
"""

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from acf.domain.channels import Channel
from acf.domain.ids import SessionId
from acf.ports.firewall import Block
from acf.ports.handoffs import Handoff, Operator
from acf.service.operator_desk import OperatorDesk, OperatorReply
from acf.testing.harness import TENANT, Harness

T = TypeVar("T")

ALICE = Operator("key_alice", "Alice")
"""The harness's operator, unless a step names another."""


def operator(name: str, key_id: str | None = None) -> Operator:
    """An operator by display name; the key id defaults to ``key_<name>``."""
    return Operator(key_id or f"key_{name.lower().replace(' ', '_')}", name)


class People:
    """An operator's desk and the block list over ``h`` (see the module)."""

    def __init__(self, h: Harness) -> None:
        self.h = h

    def desk(self) -> OperatorDesk:
        """The desk as a route builds it: this runtime's wake-ups (a crash starts another)."""
        h = self.h
        return OperatorDesk(h.store, h.clock, h.runtime.notify, h.options.people)

    async def session_id(
        self, customer: str, channel: Channel = Channel.WEB, tenant: str = TENANT
    ) -> SessionId:
        """The customer's open session (``LookupError`` when there is none)."""
        session = await self.h.store.sessions.find_open(
            tenant, self.h.key(customer, channel, tenant)
        )
        if session is None:
            raise LookupError(f"no open session for {customer} on {channel.value}")
        return session.session_id

    async def _done(self, work: Awaitable[T]) -> T:
        """Run ``work`` to its end, moving the virtual clock while it waits on it."""
        h = self.h
        task = asyncio.ensure_future(work)
        await h.settle()
        while not task.done():
            due = h.clock.next_due_ms()
            if due is None:
                await asyncio.wait([task])
                break
            h.clock.advance_to(due)
            await h.settle()
        result = await task
        await h.settle()
        return result

    async def hand_off(
        self,
        customer: str,
        reason: str = "operator",
        by: Operator = ALICE,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> Handoff:
        sid = await self.session_id(customer, channel, tenant)
        return await self._done(self.desk().handoff(tenant, sid, reason, by))

    async def claim(
        self,
        customer: str,
        by: Operator = ALICE,
        ttl_ms: int | None = None,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> Handoff:
        sid = await self.session_id(customer, channel, tenant)
        return await self._done(self.desk().claim(tenant, sid, by, ttl_ms))

    async def reply(
        self,
        customer: str,
        text: str,
        by: Operator = ALICE,
        buttons: Sequence[str] | None = None,
        answers_through_seq: int | None = None,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> OperatorReply:
        sid = await self.session_id(customer, channel, tenant)
        desk = self.desk()
        return await self._done(desk.reply(tenant, sid, by, text, buttons, answers_through_seq))

    async def release(
        self,
        customer: str,
        note: str | None = None,
        by: Operator = ALICE,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> None:
        sid = await self.session_id(customer, channel, tenant)
        await self._done(self.desk().release(tenant, sid, by, note))

    async def resume(
        self,
        customer: str,
        note: str | None = None,
        by: Operator = ALICE,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> None:
        sid = await self.session_id(customer, channel, tenant)
        await self._done(self.desk().resume(tenant, sid, by, note))

    async def block(
        self,
        customer: str,
        reason: str = "abuse",
        by: Operator = ALICE,
        expires_in_ms: int | None = None,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> Block:
        h = self.h
        expires = None if expires_in_ms is None else h.clock.now_ms() + expires_in_ms
        work = h.firewall.block(tenant, channel, customer, reason, by.key_id, expires_at_ms=expires)
        return await self._done(work)

    async def unblock(
        self,
        customer: str,
        by: Operator = ALICE,
        channel: Channel = Channel.WEB,
        tenant: str = TENANT,
    ) -> Block:
        """Lift the customer's active block (``LookupError`` when there is none)."""
        h = self.h
        block = await h.store.blocks.active(tenant, channel, customer)
        if block is None:
            raise LookupError(f"{customer} is not blocked on {channel.value}")
        return await self._done(h.firewall.lift(tenant, block.block_id, by.key_id))
