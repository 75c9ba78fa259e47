"""Contract: StepMemo."""

from acf.ports.step_memo import MemoKey, RememberStep
from acf.ports.store import Store


async def test_first_result_wins_and_is_recalled(store: Store) -> None:
    key = MemoKey("g1", "search_flights", "fp-1")
    assert await store.memo.recall("t1", key) == (False, None)
    first = RememberStep(key, {"flights": [1, 2]}, 1_000)
    assert (await store.uow.commit("t1", [first])).get(first) == {"flights": [1, 2]}
    second = RememberStep(key, {"flights": [3]}, 2_000)
    assert (await store.uow.commit("t1", [second])).get(second) == {"flights": [1, 2]}
    assert await store.memo.recall("t1", key) == (True, {"flights": [1, 2]})


async def test_key_parts_all_matter(store: Store) -> None:
    await store.uow.commit("t1", [RememberStep(MemoKey("g1", "s", "fp"), 1, 1)])
    for other in (MemoKey("g2", "s", "fp"), MemoKey("g1", "s2", "fp"), MemoKey("g1", "s", "fp2")):
        assert await store.memo.recall("t1", other) == (False, None)


async def test_none_result_is_remembered(store: Store) -> None:
    key = MemoKey("g1", "noop", "fp")
    await store.uow.commit("t1", [RememberStep(key, None, 1)])
    assert await store.memo.recall("t1", key) == (True, None)
