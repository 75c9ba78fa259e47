"""Contract: the tool ledger (write-ahead rows, one active row per key, outcomes kept)."""

import asyncio
from dataclasses import replace

import pytest

from acf.domain.errors import Conflict
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.ports.ledger import BeginExecution, Begun, FinishExecution, LedgerEntry, LedgerQuery
from acf.ports.store import Store

HOUR = 3_600_000


def entry(
    execution_id: str, key: str = "t1:refund:order-42", at: int = 1_000, **kw: object
) -> LedgerEntry:
    base = LedgerEntry(
        tenant="t1",
        execution_id=execution_id,
        idempotency_key=key,
        tool="refund",
        policy=SideEffectPolicy.IRREVERSIBLE,
        status=LedgerStatus.STARTED,
        session_id="s1",
        group_id="g1",
        turn_id="turn1",
        customer="alice",
        args={"order_id": 42},
        started_at_ms=at,
        expires_at_ms=at + 24 * HOUR,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


async def begin(store: Store, e: LedgerEntry) -> Begun:
    op = BeginExecution(e)
    return (await store.uow.commit(e.tenant, [op])).get(op)


async def test_a_key_runs_once_within_its_ttl_and_again_after(store: Store) -> None:
    first = await begin(store, entry("x1"))
    assert first.started and first.entry.status is LedgerStatus.STARTED
    done = FinishExecution("x1", LedgerStatus.SUCCEEDED, 2_000, result={"refund_id": "r-9"})
    await store.uow.commit("t1", [done])
    again = await begin(store, entry("x2", at=10 * HOUR))
    assert not again.started
    assert again.entry.execution_id == "x1" and again.entry.result == {"refund_id": "r-9"}
    assert again.entry.finished_at_ms == 2_000  # "already done at ..."
    assert await store.ledger.get("t1", "x2") is None
    later = await begin(store, entry("x3", at=25 * HOUR + 1_000))  # the 24 h TTL is over
    assert later.started
    assert (
        await store.ledger.active("t1", "t1:refund:order-42", 25 * HOUR + 2_000)
    ).execution_id == "x3"  # type: ignore[union-attr]
    assert (await store.ledger.get("t1", "x1")).status is LedgerStatus.SUCCEEDED  # type: ignore[union-attr]


async def test_a_key_without_expiry_holds_for_ever(store: Store) -> None:
    await begin(store, entry("y1", key="t1:lookup:1:group:g1", expires_at_ms=None))
    assert not (await begin(store, entry("y2", key="t1:lookup:1:group:g1", at=10**12))).started


async def test_concurrent_begins_have_one_winner(store: Store) -> None:
    # Rounds make the races likely: a begin that checked before another committed must
    # still lose to it (on PostgreSQL each begin is its own transaction).
    for n in range(15):
        key = f"t1:refund:order-{n}"
        results = await asyncio.gather(
            *(begin(store, entry(f"c{n}-{i}", key=key)) for i in range(20))
        )
        assert sum(r.started for r in results) == 1, f"round {n}"
        assert {r.entry.execution_id for r in results} == {
            next(r for r in results if r.started).entry.execution_id
        }


async def test_a_concurrent_begin_after_an_expired_holder_has_one_winner(store: Store) -> None:
    await begin(store, entry("old", key="t1:refund:order-7"))
    await store.uow.commit(
        "t1", [FinishExecution("old", LedgerStatus.SUCCEEDED, 2_000, result={"ok": True})]
    )
    later = 25 * HOUR
    results = await asyncio.gather(
        *(begin(store, entry(f"n{i}", key="t1:refund:order-7", at=later)) for i in range(20))
    )
    assert sum(r.started for r in results) == 1
    assert len({r.entry.execution_id for r in results}) == 1


@pytest.mark.parametrize(
    ("moves", "allowed"),
    [
        ([LedgerStatus.SUCCEEDED], True),
        ([LedgerStatus.FAILED], True),
        ([LedgerStatus.IN_DOUBT, LedgerStatus.SUCCEEDED], True),  # reconciled
        ([LedgerStatus.SUCCEEDED, LedgerStatus.COMPENSATED], True),
        ([LedgerStatus.SUCCEEDED, LedgerStatus.FAILED], False),  # an outcome is kept
        ([LedgerStatus.FAILED, LedgerStatus.SUCCEEDED], False),
        ([LedgerStatus.COMPENSATED], False),
    ],
)
async def test_outcomes_move_only_forward(
    store: Store, moves: list[LedgerStatus], allowed: bool
) -> None:
    await begin(store, entry("z1"))
    *first, last = moves
    for status in first:
        await store.uow.commit("t1", [FinishExecution("z1", status, 2_000)])
    op = FinishExecution("z1", last, 3_000, error="boom")
    if allowed:
        await store.uow.commit("t1", [op])
        assert (await store.ledger.get("t1", "z1")).status is last  # type: ignore[union-attr]
    else:
        with pytest.raises(Conflict):
            await store.uow.commit("t1", [op])


async def test_query_by_customer_tool_group_and_time(store: Store) -> None:
    await begin(store, entry("q1", key="k1", at=1_000))
    await begin(store, entry("q2", key="k2", at=2_000, tool="voucher", group_id="g2"))
    await begin(store, entry("q3", key="k3", at=3_000, customer="bob"))

    async def ids(where: LedgerQuery) -> list[str]:
        return [e.execution_id for e in await store.ledger.query("t1", where)]

    assert await ids(LedgerQuery()) == ["q1", "q2", "q3"]
    assert await ids(LedgerQuery(customer="alice")) == ["q1", "q2"]
    assert await ids(LedgerQuery(tool="voucher")) == ["q2"]
    assert await ids(LedgerQuery(group_id="g1", customer="alice")) == ["q1"]
    assert await ids(LedgerQuery(from_ms=2_000, to_ms=3_000)) == ["q2"]
    assert await ids(LedgerQuery(limit=1)) == ["q1"]


@pytest.mark.parametrize("outcome", [LedgerStatus.FAILED, LedgerStatus.COMPENSATED])
async def test_a_failed_or_undone_row_gives_its_key_up(store: Store, outcome: LedgerStatus) -> None:
    await begin(store, entry("f1", key="k", expires_at_ms=None))
    if outcome is LedgerStatus.COMPENSATED:
        await store.uow.commit("t1", [FinishExecution("f1", LedgerStatus.SUCCEEDED, 1_500)])
    await store.uow.commit("t1", [FinishExecution("f1", outcome, 2_000)])
    retry = await begin(store, entry("f2", key="k", at=3_000, expires_at_ms=None))
    assert retry.started and retry.entry.execution_id == "f2"
    assert (await store.ledger.get("t1", "f1")).status is outcome  # type: ignore[union-attr]


@pytest.mark.parametrize("state", [LedgerStatus.STARTED, LedgerStatus.IN_DOUBT])
async def test_an_unknown_outcome_holds_its_key_past_the_ttl(
    store: Store, state: LedgerStatus
) -> None:
    await begin(store, entry("u1"))
    if state is LedgerStatus.IN_DOUBT:
        await store.uow.commit("t1", [FinishExecution("u1", state, 2_000)])
    late = await begin(store, entry("u2", at=48 * HOUR))
    assert not late.started and late.entry.execution_id == "u1"
