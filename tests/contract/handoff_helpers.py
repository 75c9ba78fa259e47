"""Builders shared by the handoff contract suites."""

from typing import Any

from acf.domain.events import EventKind, FabricEvent
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import ClaimHandoff, EnterHuman, Handoff, HandoffSource, Operator
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from tests.contract.helpers import append, key

ALICE = Operator("key-alice", "Alice")
BOB = Operator("key-bob", "Bob")
TTL = 60_000
T = "t1"
NOTICE = "A person will answer."


async def commit(store: Store, *ops: WriteOp[Any]) -> list[Any]:
    """Commit ``ops`` as tenant ``T``'s unit; their results, in order."""
    results = await store.uow.commit(T, list(ops))
    return [results.get(op) for op in ops]


async def session(store: Store, messages: int = 1, customer: str = "+15550001") -> str:
    """A session of ``customer`` with ``messages`` messages (at 1 000 ms, 1 001 ms, ...)."""
    k = key(T, customer)
    found = None
    for n in range(messages):
        found = await append(store, k, text=f"message {n + 1}", at_ms=1_000 + n)
    assert found is not None
    return found.session_id


def enter(sid: str, at_ms: int = 2_000, notice: str | None = NOTICE) -> EnterHuman:
    return EnterHuman(
        T, sid, "asked for a person", HandoffSource.PIPELINE, at_ms, "trace-h", notice=notice
    )


async def handed_off(
    store: Store, messages: int = 1, customer: str = "+15550001", at_ms: int = 2_000
) -> tuple[str, Handoff]:
    sid = await session(store, messages, customer)
    (handoff,) = await commit(store, enter(sid, at_ms))
    assert handoff is not None
    return sid, handoff


async def events(store: Store, kind: EventKind) -> list[FabricEvent]:
    return await store.events.query(T, EventQuery(kinds=(kind,), in_commit_order=False))


def claim(sid: str, by: Operator = ALICE, at_ms: int = 3_000, ttl: int = TTL) -> ClaimHandoff:
    return ClaimHandoff(T, sid, by, ttl, at_ms, "trace-c")
