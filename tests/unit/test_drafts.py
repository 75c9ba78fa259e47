"""Drafts (DESIGN §16): the coalescer on a virtual clock, the withdrawal riding in the unit
that ends an attempt, the forwarder's filter (a table), and the in-process bus."""

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from acf.adapters.memory.drafts import MAX_BUFFERED, InProcessDraftBus
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.ports.drafts import Draft, DraftBus, DraftSubscription
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.unit_of_work import WriteOp
from acf.service.drafts import (
    Drafted,
    DraftFilter,
    DraftSource,
    DraftStream,
    common_prefix,
    with_withdrawal,
)
from acf.testing import VirtualClock

SOURCE = DraftSource("acme", "s1", "turn1", 1, 7)


class Recorder:
    """A DraftBus that keeps what was published."""

    def __init__(self) -> None:
        self.drafts: list[Draft] = []

    def publish(self, draft: Draft) -> None:
        self.drafts.append(draft)

    def subscribe(self, tenant: str, session_id: str) -> DraftSubscription:
        raise NotImplementedError

    def seen(self) -> list[tuple[int, int, str]]:
        """(at, offset, text) of each draft, ``at`` from the test's start."""
        return [(d.at_ms - START, d.offset, d.text) for d in self.drafts]


START = 1_700_000_000_000


def spawner() -> tuple[list["asyncio.Task[None]"], Any]:
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> "asyncio.Task[None]":
        task = asyncio.get_running_loop().create_task(coro, name=name)
        tasks.append(task)
        return task

    return tasks, spawn


async def advance(clock: VirtualClock, ms: int) -> None:
    """Move the clock, letting the due timers run."""
    target = clock.now_ms() + ms
    for _ in range(3):
        await asyncio.sleep(0)  # new timers start sleeping
    while (due := clock.next_due_ms()) is not None and due <= target:
        clock.advance_to(due)
        for _ in range(3):
            await asyncio.sleep(0)
    clock.advance_to(target)
    for _ in range(3):
        await asyncio.sleep(0)


async def test_the_first_draft_goes_at_once_then_at_most_ten_a_second() -> None:
    clock, bus = VirtualClock(START), Recorder()
    _, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn)
    text = ""
    for word in ["Hello", " there", ",", " how", " can", " I", " help", "?"]:
        text += word
        stream.offer(text)  # a token every 30 ms
        await advance(clock, 30)
    await advance(clock, 200)

    assert bus.seen() == [
        (0, 0, "Hello"),  # at once
        (100, 5, " there, how"),  # the latest text when the timer fired
        (200, 16, " can I help"),
        (300, 27, "?"),
    ]
    gaps = [b.at_ms - a.at_ms for a, b in zip(bus.drafts, bus.drafts[1:], strict=False)]
    assert all(gap >= 100 for gap in gaps)
    assert "".join(d.text for d in bus.drafts) == text
    assert {(d.tenant, d.session_id, d.turn_id, d.attempt, d.fence) for d in bus.drafts} == {
        ("acme", "s1", "turn1", 1, 7)
    }


async def test_a_quiet_stream_publishes_the_next_text_at_once() -> None:
    clock, bus = VirtualClock(START), Recorder()
    _, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn)
    stream.offer("One")
    await advance(clock, 150)
    stream.offer("One two")
    assert bus.seen() == [(0, 0, "One"), (150, 3, " two")]


async def test_a_restart_goes_back_to_the_common_prefix() -> None:
    clock, bus = VirtualClock(START), Recorder()
    _, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn)
    stream.offer("Your order ships")
    await advance(clock, 100)
    stream.offer("Your refund")  # the model started over from "Your "
    await advance(clock, 100)
    stream.offer("Sorry")  # and from nothing
    await advance(clock, 100)
    stream.offer("Sorry")  # nothing new: nothing published

    assert bus.seen() == [(0, 0, "Your order ships"), (100, 5, "refund"), (200, 0, "Sorry")]
    text = ""
    for d in bus.drafts:
        text = text[: d.offset] + d.text
    assert text == "Sorry"


async def test_the_whole_text_again_every_second() -> None:
    clock, bus = VirtualClock(START), Recorder()
    _, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn, every_ms=100, whole_every_ms=1000)
    text = ""
    for i in range(12):
        text += f"w{i} "
        stream.offer(text)
        await advance(clock, 100)

    wholes = [(at, offset) for at, offset, _ in bus.seen() if offset == 0]
    assert wholes == [(0, 0), (1000, 0)]
    assert bus.drafts[10].text == "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 "
    assert "".join(d.text for d in bus.drafts[10:]) == text


async def test_a_resting_text_is_repeated_whole_every_second_for_late_watchers() -> None:
    clock, bus = VirtualClock(START), Recorder()
    tasks, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn)
    stream.offer("Let me check")
    stream.offer("Let me check that")  # then a tool runs: the text rests
    await advance(clock, 2_500)

    assert bus.seen() == [
        (0, 0, "Let me check"),
        (100, 12, " that"),
        (1000, 0, "Let me check that"),
        (2000, 0, "Let me check that"),
    ]
    stream.close()
    await advance(clock, 1_000)
    assert len(bus.drafts) == 4
    assert all(t.done() for t in tasks)


async def test_what_is_pending_when_the_attempt_ends_is_dropped() -> None:
    clock, bus = VirtualClock(START), Recorder()
    tasks, spawn = spawner()
    stream = DraftStream(bus, SOURCE, clock, spawn)
    stream.offer("a")
    stream.offer("ab")  # pending behind the rate
    stream.close()
    await advance(clock, 500)
    stream.offer("abc")

    assert bus.seen() == [(0, 0, "a")]
    assert all(t.done() for t in tasks)


async def test_a_stopped_runtime_drops_the_pending_text() -> None:
    clock, bus = VirtualClock(START), Recorder()

    def refuse(coro: Coroutine[Any, Any, None], name: str) -> "asyncio.Task[None]":
        coro.close()
        raise RuntimeError("the runtime is stopped")

    stream = DraftStream(bus, SOURCE, clock, refuse)
    stream.offer("a")
    stream.offer("ab")
    await advance(clock, 500)
    assert bus.seen() == [(0, 0, "a")]


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [("", "", 0), ("abc", "abcd", 3), ("abcd", "abc", 3), ("abc", "xbc", 0), ("héllo", "hélp", 3)],
)
def test_common_prefix(a: str, b: str, n: int) -> None:
    assert common_prefix(a, b) == n


# The withdrawal rides in the unit that ends an attempt without its reply.

CORR = Correlation("acme", "trace", "s1", "turn1", "g1", "acf/0", "sha256:x")


def event(kind: EventKind, **data: Any) -> AppendEvent:
    return AppendEvent(FabricEvent(kind, 10, CORR, data))


GUARD = CheckFence("s1", 7, 10)


@pytest.mark.parametrize(
    ("ending", "withdrawn"),
    [
        (EventKind.TURN_ATTEMPT_FAILED, True),
        (EventKind.TURN_SUPERSEDED, True),
        (EventKind.TURN_FAILED, True),
        (EventKind.TURN_COMMITTED, False),
    ],
)
def test_the_withdrawal_goes_just_before_the_ending(ending: EventKind, withdrawn: bool) -> None:
    queued = event(EventKind.RESPONSE_QUEUED, position=0)
    end = event(ending)
    ops, settled = with_withdrawal([GUARD, queued, end], Drafted(2, 7))

    assert settled
    if not withdrawn:
        assert ops == [GUARD, queued, end]
        return
    assert len(ops) == 4
    assert ops[:2] == [GUARD, queued] and ops[3] is end
    added = ops[2]
    assert isinstance(added, AppendEvent)
    assert added.event.kind is EventKind.REPLY_DRAFT_WITHDRAWN
    assert added.event.data == {"attempt": 2, "fence": 7}
    assert added.event.correlation == CORR


def test_units_that_end_nothing_carry_no_withdrawal() -> None:
    progress: list[WriteOp[Any]] = [GUARD, event(EventKind.TURN_PROGRESS, name="step")]
    assert with_withdrawal(progress, Drafted(1, 7)) == (progress, False)
    ending: list[WriteOp[Any]] = [GUARD, event(EventKind.TURN_SUPERSEDED)]
    assert with_withdrawal(ending, None) == (ending, False)


# The forwarder's filter: a table of steps (a stored event observed, or a draft offered)
# and whether each draft is forwarded.


def stored(kind: EventKind, turn: str = "T", **data: Any) -> FabricEvent:
    return FabricEvent(kind, 0, Correlation("acme", "trace", "s1", turn, "g1"), data)


def draft(offset: int, text: str, attempt: int = 1, fence: int = 7, turn: str = "T") -> Draft:
    return Draft("acme", "s1", turn, attempt, fence, offset, text, 0)


Step = FabricEvent | tuple[Draft, bool]

STARTED = stored(EventKind.TURN_STARTED, attempt=1)
TABLE: dict[str, list[Step]] = {
    "drafts of a running turn pass in order": [
        STARTED,
        (draft(0, "Hel"), True),
        (draft(3, "lo"), True),
        (draft(2, "y!"), True),  # a restart from the common prefix
        (draft(0, "Hey!"), True),  # the whole text
    ],
    "nothing of a turn after its committed reply": [
        (draft(0, "Hi"), True),
        stored(EventKind.RESPONSE_QUEUED, position=0, text="Hi there"),
        stored(EventKind.TURN_COMMITTED, replies=1),
        (draft(2, " there"), False),
        (draft(0, "Hi there"), False),
    ],
    "nothing after the turn failed or was superseded": [
        (draft(0, "a", turn="A"), True),
        stored(EventKind.TURN_FAILED, turn="A"),
        (draft(1, "b", turn="A"), False),
        (draft(0, "a", turn="B"), True),
        stored(EventKind.TURN_SUPERSEDED, turn="B"),
        (draft(0, "a", turn="B", attempt=2, fence=8), False),
    ],
    "a withdrawn attempt is dropped; the next attempt shows": [
        (draft(0, "First try"), True),
        stored(EventKind.REPLY_DRAFT_WITHDRAWN, attempt=1, fence=7),
        (draft(9, " more"), False),  # late, from the withdrawn attempt
        (draft(0, "Second", attempt=2), True),
        (draft(6, " try", attempt=2), True),
    ],
    "a lower attempt or fence than the highest seen is dropped": [
        (draft(0, "new", attempt=2, fence=9), True),
        (draft(0, "old", attempt=1, fence=9), False),
        (draft(0, "old", attempt=2, fence=8), False),
        (draft(3, "er", attempt=2, fence=9), True),
    ],
    "a turn.started of a higher attempt retires the earlier one": [
        (draft(0, "one"), True),
        stored(EventKind.TURN_STARTED, attempt=2),
        (draft(3, " two"), False),
        (draft(0, "two", attempt=2, fence=8), True),
    ],
    "a draft that cannot be placed waits for the whole text": [
        (draft(0, "abc"), True),
        (draft(5, "fg"), False),  # "de" was lost
        (draft(3, "x"), True),
        (draft(0, "abcdefgh"), True),
    ],
    "a new attempt's first draft must start from 0": [
        (draft(0, "abc"), True),
        (draft(3, "def", attempt=2, fence=8), False),
        (draft(0, "abcdef", attempt=2, fence=8), True),
    ],
    "other turns are not affected": [
        stored(EventKind.TURN_COMMITTED, turn="A"),
        (draft(0, "b", turn="B"), True),
    ],
}


@pytest.mark.parametrize("name", list(TABLE))
def test_the_forwarder_filter(name: str) -> None:
    shown = DraftFilter()
    for step in TABLE[name]:
        if isinstance(step, FabricEvent):
            shown.observe(step)
        else:
            offered, forwarded = step
            assert shown.admit(offered) is forwarded, (name, offered)


def test_the_filter_remembers_a_bounded_number_of_turns() -> None:
    shown = DraftFilter(max_turns=2)
    for turn in ("A", "B", "C"):
        shown.observe(stored(EventKind.TURN_COMMITTED, turn=turn))
    assert not shown.admit(draft(0, "x", turn="C"))
    assert shown.admit(draft(0, "x", turn="A"))  # forgotten: the oldest


# The in-process bus.


async def test_the_in_process_bus_delivers_to_the_sessions_subscribers() -> None:
    bus = InProcessDraftBus()
    assert isinstance(bus, DraftBus)
    mine, twin, other = (
        bus.subscribe("acme", "s1"),
        bus.subscribe("acme", "s1"),
        bus.subscribe("globex", "s1"),
    )
    assert isinstance(mine, DraftSubscription)
    bus.publish(draft(0, "Hi"))
    bus.publish(draft(2, "!"))

    await asyncio.wait_for(mine.wait(), 1)
    assert [d.text for d in mine.drain()] == ["Hi", "!"]
    assert [d.text for d in twin.drain()] == ["Hi", "!"]
    assert other.drain() == []  # another tenant's session of the same id
    assert mine.drain() == []

    mine.close()
    bus.publish(draft(3, "?"))
    assert mine.drain() == []
    assert [d.text for d in twin.drain()] == ["?"]
    twin.close()
    other.close()
    assert bus.watched == 0


async def test_a_slow_subscriber_keeps_the_latest_drafts() -> None:
    bus = InProcessDraftBus()
    sub = bus.subscribe("acme", "s1")
    for i in range(MAX_BUFFERED + 10):
        bus.publish(draft(i, "x"))
    kept = sub.drain()
    assert len(kept) == MAX_BUFFERED
    assert kept[-1].offset == MAX_BUFFERED + 9
