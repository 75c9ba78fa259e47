"""Tenant isolation of people in the loop: handoffs, notes, the block list and the firewall's
counters (issue 22), on every backend.

Tenant B has a session handed to a person, claimed, with a note, a blocked customer and
counted messages; tenant A reads and writes with B's identifiers and must neither see nor
change any of it. ``test_tenant_isolation.py``'s meta-test counts the cases here.
"""

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

import acf.ports.firewall
import acf.ports.handoffs
from acf.domain.channels import Channel
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.modes import SessionMode
from acf.ports.event_store import EventQuery
from acf.ports.firewall import BlockCustomer, CountCustomer, LiftBlock
from acf.ports.handoffs import (
    AddNote,
    CheckClaim,
    ClaimHandoff,
    EnterHuman,
    HandoffSource,
    InboxState,
    MarkOperatorReply,
    MarkSlaBreached,
    MarkStillWaiting,
    Operator,
    ReleaseClaim,
    ResumeAgent,
)
from acf.ports.session_modes import CheckMode, CountFallback, EndCooldown, StartCooldown
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.testing import VirtualClock
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key

A, B = "tenant-a", "tenant-b"
SHARED = "shared-customer"
BLOCKED = "blocked-customer"
FAR = 10**13
OPERATOR = Operator("key-b", "Bea")
INTRUDER = Operator("key-a", "Mallory")

PORTS = {
    "handoffs": acf.ports.handoffs.Handoffs,
    "blocks": acf.ports.firewall.Blocks,
    "customer_rates": acf.ports.firewall.CustomerRates,
}


@dataclass
class World:
    session_id: str
    handoff_id: str
    block_id: str


async def _seed(store: Store, clock: VirtualClock) -> World:
    now = clock.now_ms()
    appended = await append(store, key(tenant=B, customer=SHARED), at_ms=now)
    await append(store, key(tenant=B, customer=BLOCKED, channel=Channel.SMS), at_ms=now)
    enter = EnterHuman(B, appended.session_id, "angry", HandoffSource.OPERATOR, now, "tr", OPERATOR)
    block = BlockCustomer(B, "shared-block", Channel.SMS, BLOCKED, "abuse", "key-b", now, "tr")
    handoff = (await store.uow.commit(B, [enter])).get(enter)
    assert handoff is not None
    await store.uow.commit(
        B,
        [
            ClaimHandoff(B, appended.session_id, OPERATOR, 600_000, now, "tr"),
            AddNote(B, appended.session_id, "shared-note", OPERATOR, "secret note", now, "tr"),
            block,
            CountCustomer(B, Channel.WHATSAPP, SHARED, "cooldown", 0, by=2),
        ],
    )
    await store.customer_rates.hit(B, Channel.WHATSAPP, SHARED, now)
    return World(appended.session_id, handoff.handoff_id, "shared-block")


ReadCase = Callable[[Store, World], Awaitable[Any]]


async def _peek(store: Store) -> Any:
    counts = await store.customer_rates.peek(A, Channel.WHATSAPP, SHARED, 1_700_000_000_000)
    return None if (counts.minute, counts.prev_minute, counts.day) == (0, 0, 0) else counts


async def _hit(store: Store) -> Any:
    counts = await store.customer_rates.hit(A, Channel.WHATSAPP, SHARED, 1_700_000_000_000)
    return None if (counts.minute, counts.day) == (1, 1) else counts  # A's own first message


async def _waiting(store: Store) -> Any:
    return await store.handoffs.waiting_count(A, FAR) or None


async def _prune(store: Store) -> Any:
    await store.customer_rates.prune(A, FAR)
    return None  # B's counters are checked by the snapshot below


async def _tallies(store: Store) -> Any:
    counts = await store.customer_rates.tallies(A, Channel.WHATSAPP, SHARED, [("cooldown", 0)])
    return None if list(counts) == [0] else counts  # B's tally (2) never shows in A


READS: dict[str, ReadCase] = {
    "handoffs.current": lambda s, b: s.handoffs.current(A, b.session_id),
    "handoffs.get": lambda s, b: s.handoffs.get(A, b.handoff_id),
    "handoffs.inbox": lambda s, b: s.handoffs.inbox(A, InboxState.OPEN, FAR),
    "handoffs.history": lambda s, b: s.handoffs.history(A, b.session_id),
    "handoffs.due": lambda s, b: s.handoffs.due(A, FAR, 1, 1),
    "handoffs.waiting_count": lambda s, b: _waiting(s),
    "handoffs.notes": lambda s, b: s.handoffs.notes(A, b.session_id),
    "blocks.get": lambda s, b: s.blocks.get(A, b.block_id),
    "blocks.active": lambda s, b: s.blocks.active(A, Channel.SMS, BLOCKED),
    "blocks.list_blocks": lambda s, b: s.blocks.list_blocks(A, include_lifted=True),
    "blocks.expired": lambda s, b: s.blocks.expired(A, FAR),
    "customer_rates.peek": lambda s, b: _peek(s),
    "customer_rates.hit": lambda s, b: _hit(s),
    "customer_rates.prune": lambda s, b: _prune(s),
    "customer_rates.tallies": lambda s, b: _tallies(s),
}


def writes(session_id: str, handoff_id: str, block_id: str) -> dict[type[WriteOp[Any]], Any]:
    """Tenant A's ops naming tenant B's session, handoff and block."""
    return {
        CheckMode: CheckMode(session_id, SessionMode.HUMAN),
        StartCooldown: StartCooldown(A, session_id, FAR, "flood", "x", 2_000, "tr", "notice"),
        EndCooldown: EndCooldown(A, session_id, FAR, force=True),
        CountFallback: CountFallback(session_id, 2_000),
        EnterHuman: EnterHuman(A, session_id, "x", HandoffSource.OPERATOR, 2_000, "tr", INTRUDER),
        ResumeAgent: ResumeAgent(A, session_id, INTRUDER, "x", 2_000, "tr"),
        ClaimHandoff: ClaimHandoff(A, session_id, INTRUDER, 600_000, 2_000, "tr"),
        CheckClaim: CheckClaim(A, session_id, OPERATOR, 2_000),
        ReleaseClaim: ReleaseClaim(A, session_id, OPERATOR, "x", 2_000, "tr"),
        AddNote: AddNote(A, session_id, "note-a", INTRUDER, "x", 2_000, "tr"),
        MarkOperatorReply: MarkOperatorReply(A, handoff_id, 2_000, FAR),
        MarkSlaBreached: MarkSlaBreached(A, handoff_id, 2_000, 1),
        MarkStillWaiting: MarkStillWaiting(A, handoff_id, 2_000, "still there?"),
        # A blocking the same customer on the same channel blocks A's own customer only.
        BlockCustomer: BlockCustomer(
            A, "block-a", Channel.WHATSAPP, SHARED, "x", "key-a", 2_000, "tr"
        ),
        LiftBlock: LiftBlock(A, block_id, "key-a", 2_000, "tr"),
        CountCustomer: CountCustomer(A, Channel.WHATSAPP, SHARED, "cooldown", 0, by=5),
    }


async def test_every_people_read_as_tenant_a_finds_nothing_of_b(
    store: Store, clock: VirtualClock
) -> None:
    b = await _seed(store, clock)
    for name, case in READS.items():
        found = await case(store, b)
        assert found in (None, [], ()), f"{name} returned tenant B's data: {found!r}"
    assert (await store.handoffs.current(B, b.session_id)) is not None
    assert [n.note_id for n in await store.handoffs.notes(B, b.session_id)] == ["shared-note"]
    assert (await store.blocks.get(B, b.block_id)) is not None


async def test_no_people_write_as_tenant_a_changes_b(store: Store, clock: VirtualClock) -> None:
    b = await _seed(store, clock)

    async def snapshot() -> tuple[Any, ...]:
        await readable(store)
        counts = await store.customer_rates.peek(B, Channel.WHATSAPP, SHARED, clock.now_ms())
        return (
            await store.sessions.list_sessions(B),
            await store.handoffs.history(B, b.session_id),
            await store.handoffs.notes(B, b.session_id),
            await store.blocks.list_blocks(B, include_lifted=True),
            (counts.minute, counts.day),
            await store.events.query(B, EventQuery()),
            await store.outbox.for_session(B, b.session_id),
        )

    before = await snapshot()
    for op_type, op in writes(b.session_id, b.handoff_id, b.block_id).items():
        with contextlib.suppress(Conflict, InvalidValue):
            await store.uow.commit(A, [op])
        assert await snapshot() == before, f"{op_type.__name__} as tenant A changed tenant B"
        if hasattr(op, "tenant"):  # the same op naming tenant B is refused in A's unit
            with pytest.raises(InvalidValue):
                await store.uow.commit(A, [replace(op, tenant=B)])
    session = next(s for s in before[0] if s.session_id == b.session_id)
    assert session.mode is SessionMode.HUMAN
    mine = await store.blocks.active(A, Channel.WHATSAPP, SHARED)
    assert mine is not None and mine.block_id == "block-a"
