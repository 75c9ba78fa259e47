"""Contract: Timers."""

from acf.ports.store import Store
from acf.ports.timers import CancelTimer, SetTimer, Timer


async def test_set_move_due_and_cancel(store: Store) -> None:
    await store.uow.commit(
        "t1",
        [
            SetTimer(Timer("t1", "s1", "window", 3_000, {"turn": "x"})),
            SetTimer(Timer("t1", "s2", "window", 1_000)),
            SetTimer(Timer("t1", "s1", "confirmation", 9_000)),
        ],
    )
    due = await store.timers.due("t1", 3_000)
    assert [(t.session_id, t.kind) for t in due] == [("s2", "window"), ("s1", "window")]
    assert due[1].payload == {"turn": "x"}
    await store.uow.commit("t1", [SetTimer(Timer("t1", "s1", "window", 5_000))])  # moved
    assert [t.session_id for t in await store.timers.due("t1", 3_000)] == ["s2"]
    moved = await store.timers.get("t1", "s1", "window")
    assert moved is not None and moved.due_at_ms == 5_000
    cancel = CancelTimer("s2", "window")
    assert (await store.uow.commit("t1", [cancel])).get(cancel) is True
    again = CancelTimer("s2", "window")
    assert (await store.uow.commit("t1", [again])).get(again) is False
    assert await store.timers.get("t1", "s2", "window") is None
    assert [t.kind for t in await store.timers.due("t1", 10_000, limit=1)] == ["window"]
