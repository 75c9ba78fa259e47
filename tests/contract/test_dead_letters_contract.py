"""Contract: DeadLetters and their writes, on every backend.

A letter is recorded once per id; its replay is requested at most once (of racing claims
exactly one succeeds), then finished once by the REPLAY turn that ran it.
"""

import asyncio
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from acf.adapters.postgres import PgStore
from acf.adapters.sql.database import SqlConnection
from acf.domain.errors import Conflict, InvalidValue
from acf.ports.dead_letters import (
    AlreadyReplayed,
    DeadLetter,
    FinishReplay,
    NoSuchDeadLetter,
    RecordDeadLetter,
    RequestReplay,
)
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

REQUEST = {
    "message": {"text": "où est ma commande ?", "buttons": [{"id": "b1", "title": "1001"}]},
    "chat_history": [{"role": "user", "content": "hi"}],
    "attempt": 3,
    "nothing": None,
}


def letter(
    dead_letter_id: str, session_id: str = "s1", at_ms: int = 1_000, tenant: str = "t1"
) -> DeadLetter:
    return DeadLetter(
        tenant=tenant,
        dead_letter_id=dead_letter_id,
        session_id=session_id,
        agent="support",
        turn_id=f"turn-{dead_letter_id}",
        group_id=f"group-{dead_letter_id}",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        pipeline="agent_service",
        error="the agent service answered 503 three times",
        attempts=3,
        created_at_ms=at_ms,
        request=REQUEST,
    )


async def commit(store: Store, *ops: WriteOp[Any]) -> None:
    await store.uow.commit("t1", list(ops))


async def record(store: Store, *letters: DeadLetter) -> None:
    await commit(store, *(RecordDeadLetter(d) for d in letters))


async def test_a_recorded_letter_reads_back_whole(store: Store) -> None:
    stored = letter("dl-1")
    await record(store, stored)
    assert await store.dead_letters.get("t1", "dl-1") == stored
    found = await store.dead_letters.get("t1", "dl-1")
    assert found is not None and found.request == REQUEST  # JSON round trip
    assert await store.dead_letters.get("t1", "dl-2") is None
    assert await store.dead_letters.list("t1") == [stored]


async def test_recording_an_id_twice_keeps_the_first(store: Store) -> None:
    first = letter("dl-1")
    await record(store, first)
    await record(store, replace(first, error="another error", attempts=9, request={}))
    assert await store.dead_letters.get("t1", "dl-1") == first


async def test_the_list_is_newest_first_bounded_and_filtered_by_session(store: Store) -> None:
    a, b, c = letter("a", "s1", 1_000), letter("b", "s2", 2_000), letter("c", "s1", 3_000)
    await record(store, b, c, a)
    assert await store.dead_letters.list("t1") == [c, b, a]
    assert await store.dead_letters.list("t1", limit=2) == [c, b]
    assert await store.dead_letters.list("t1", session_id="s1") == [c, a]
    assert await store.dead_letters.list("t1", limit=1, session_id="s1") == [c]
    assert await store.dead_letters.list("t1", session_id="s3") == []
    with pytest.raises(InvalidValue, match="limit"):
        await store.dead_letters.list("t1", limit=0)


async def test_a_replay_is_requested_once(store: Store) -> None:
    await record(store, letter("dl-1"))
    await commit(store, RequestReplay("dl-1", 5_000))
    requested = await store.dead_letters.get("t1", "dl-1")
    assert requested is not None and requested.replay_requested_at_ms == 5_000
    with pytest.raises(AlreadyReplayed, match="dl-1"):
        await commit(store, RequestReplay("dl-1", 6_000))
    assert await store.dead_letters.get("t1", "dl-1") == requested
    with pytest.raises(NoSuchDeadLetter, match="dl-404"):
        await commit(store, RequestReplay("dl-404", 6_000))


async def test_a_refused_request_commits_nothing_of_its_unit(store: Store) -> None:
    with pytest.raises(NoSuchDeadLetter):
        await commit(store, RecordDeadLetter(letter("dl-1")), RequestReplay("dl-404", 2_000))
    assert await store.dead_letters.get("t1", "dl-1") is None


async def test_racing_replay_requests_one_wins(store: Store) -> None:
    await record(store, letter("dl-1"))
    results = await asyncio.gather(
        *(commit(store, RequestReplay("dl-1", 2_000 + i)) for i in range(4)),
        return_exceptions=True,
    )
    assert results.count(None) == 1
    assert all(isinstance(r, AlreadyReplayed) for r in results if r is not None)


async def test_pending_replay_is_the_oldest_requested_and_unfinished(store: Store) -> None:
    old, new, other = letter("old", at_ms=1_000), letter("new", at_ms=2_000), letter("x", "s2")
    await record(store, old, new, other)
    assert await store.dead_letters.pending_replay("t1", "s1") is None  # none requested
    await commit(store, RequestReplay("new", 3_000), RequestReplay("x", 3_000))
    pending = await store.dead_letters.pending_replay("t1", "s1")
    assert pending is not None and pending.dead_letter_id == "new"
    await commit(store, RequestReplay("old", 4_000))
    pending = await store.dead_letters.pending_replay("t1", "s1")
    assert pending is not None and pending.dead_letter_id == "old"  # oldest letter first

    await commit(store, FinishReplay("old", "replay-turn", 5_000))
    finished = await store.dead_letters.get("t1", "old")
    assert finished is not None
    assert (finished.replay_turn_id, finished.replayed_at_ms) == ("replay-turn", 5_000)
    assert finished.replay_requested_at_ms == 4_000
    pending = await store.dead_letters.pending_replay("t1", "s1")
    assert pending is not None and pending.dead_letter_id == "new"
    await commit(store, FinishReplay("new", "replay-turn-2", 6_000))
    assert await store.dead_letters.pending_replay("t1", "s1") is None
    with pytest.raises(AlreadyReplayed):
        await commit(store, RequestReplay("old", 7_000))


async def test_a_replay_finishes_once_and_only_after_its_request(store: Store) -> None:
    await record(store, letter("dl-1"))
    with pytest.raises(Conflict, match="no replay was requested"):
        await commit(store, FinishReplay("dl-1", "turn-r", 2_000))
    await commit(store, RequestReplay("dl-1", 2_000), FinishReplay("dl-1", "turn-r", 3_000))
    with pytest.raises(AlreadyReplayed):
        await commit(store, FinishReplay("dl-1", "turn-r2", 4_000))
    done = await store.dead_letters.get("t1", "dl-1")
    assert done is not None and done.replay_turn_id == "turn-r"
    with pytest.raises(NoSuchDeadLetter):
        await commit(store, FinishReplay("dl-404", "turn-r", 4_000))


async def test_a_letter_of_another_tenant_is_refused(store: Store) -> None:
    with pytest.raises(InvalidValue):
        await record(store, letter("dl-1", tenant="t2"))
    assert await store.dead_letters.list("t2") == []


@pytest.mark.backends("postgresql")
async def test_on_postgresql_row_level_security_hides_other_tenants_letters(
    backend: str, store: Store
) -> None:
    assert isinstance(store, PgStore)
    await store.uow.commit("t2", [RecordDeadLetter(letter("dl-1", tenant="t2"))])

    def count(conn: SqlConnection) -> int:
        # No tenant in the query: the policy alone must keep t2's letter out of t1's scope.
        return int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    assert await store.db.read("t1", count) == 0
    assert await store.db.read("t2", count) == 1
    # Nor can t1 move a letter of its own to t2.
    await record(store, letter("dl-mine"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        await store.db.write(
            "t1",
            lambda conn: conn.execute(
                "UPDATE dead_letters SET tenant = 't2' WHERE dead_letter_id = 'dl-mine'"
            ),
        )
    assert await store.db.read("t2", count) == 1
