"""Drafts (DESIGN §16): the reply a running attempt is still writing, shown at once where a
channel can stream (the web chat), never stored, sent or put in history.

Three parts, each small:

- ``DraftStream``, one per attempt, turns the pipeline's ``ctx.draft(text)`` calls (the
  whole text so far each time) into drafts on the ``DraftBus``: the first at once, then at
  most one per ``every_ms`` (the latest text wins, flushed by a timer on the clock); each
  from the common prefix with what it published last (a restart goes back, to 0 say), and
  once every ``whole_every_ms`` the whole text from 0, changed or not, so a watcher that
  joined late or lost a draft catches up. What is pending when the attempt ends is dropped.
- ``with_withdrawal`` puts the stored ``reply.draft_withdrawn`` event into the unit that
  records how an attempt that drafted ended without its reply (the attempt failed: an
  exception, the deadline, a refused commit; the turn superseded or failed). A holder that
  lost its lease can write nothing: its drafts are retired by the next holder's
  ``turn.started`` (a higher attempt) or the turn's end, which watchers honour too.
- ``DraftFilter``, one per watcher (a session's event stream), decides which drafts to pass
  on, from the stored events it forwarded: none of a turn once its reply is committed (or
  it failed, or was superseded), none of an attempt once withdrawn, none of a lower attempt
  or fence than the highest seen for the turn, and none a watcher could not place (its
  offset beyond the text the watcher has).
"""

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId, TurnId
from acf.ports.clock import Clock
from acf.ports.drafts import Draft, DraftBus
from acf.ports.event_store import AppendEvent
from acf.ports.unit_of_work import WriteOp

EVERY_MS = 100
"""At most ten drafts a second per attempt."""
WHOLE_EVERY_MS = 1000
"""The whole text again (from 0) this often while the attempt runs."""

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


@dataclass(frozen=True, slots=True)
class DraftSource:
    """The attempt whose drafts a stream publishes."""

    tenant: TenantId
    session_id: SessionId
    turn_id: TurnId
    attempt: int
    fence: int


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    low, high = 0, n  # a[:low] == b[:low], a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


class DraftStream:
    """The drafts of one attempt (see the module docstring). ``offer`` never waits."""

    def __init__(
        self,
        bus: DraftBus,
        source: DraftSource,
        clock: Clock,
        spawn: Spawn,
        *,
        every_ms: int = EVERY_MS,
        whole_every_ms: int = WHOLE_EVERY_MS,
    ) -> None:
        self._bus = bus
        self._source = source
        self._clock = clock
        self._spawn = spawn
        self._every_ms = every_ms
        self._whole_every_ms = whole_every_ms
        self._shown = ""
        """The text watchers have (the last one published)."""
        self._pending: str | None = None
        self._next_at_ms: int | None = None
        self._whole_at_ms = 0
        self._timer: asyncio.Task[None] | None = None
        self._timer_due_ms = 0
        self._closed = False
        self.published = 0
        """How many drafts went to the bus."""

    def offer(self, text: str) -> None:
        """The whole reply so far: published now, or when the rate allows (if no later
        text replaced it by then)."""
        if self._closed:
            return
        now = self._clock.now_ms()
        if self._next_at_ms is None or now >= self._next_at_ms:
            self._pending = None
            self._publish(text, now)
        else:
            self._pending = text
        self._arm()

    def close(self) -> None:
        """The attempt ended: drop what is pending, publish nothing more."""
        self._closed = True
        self._pending = None
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _arm(self) -> None:
        """One timer for what is due next: the pending text when the rate allows it, else
        the whole text again (a watcher that joined while the text rests gets it)."""
        if self._pending is not None and self._next_at_ms is not None:
            due = self._next_at_ms
        else:
            due = self._whole_at_ms + self._whole_every_ms
        if self._timer is not None:
            if self._timer_due_ms == due:
                return
            self._timer.cancel()
        try:
            self._timer = self._spawn(self._fire_at(due), "draft")
            self._timer_due_ms = due
        except RuntimeError:  # the runtime stops: nobody will read them
            self._timer, self._pending = None, None

    async def _fire_at(self, due_ms: int) -> None:
        await self._clock.sleep(max(0, due_ms - self._clock.now_ms()) / 1000)
        self._timer = None
        if self._closed:
            return
        text = self._shown if self._pending is None else self._pending
        self._pending = None
        self._publish(text, self._clock.now_ms())
        self._arm()

    def _publish(self, text: str, now: int) -> None:
        whole = self.published == 0 or now - self._whole_at_ms >= self._whole_every_ms
        if text == self._shown and not whole:
            return  # nothing new: the rate budget stays unspent
        offset = 0 if whole else common_prefix(self._shown, text)
        if whole:
            self._whole_at_ms = now
        s = self._source
        draft = Draft(
            s.tenant, s.session_id, s.turn_id, s.attempt, s.fence, offset, text[offset:], now
        )
        self._bus.publish(draft)
        self._shown = text
        self._next_at_ms = now + self._every_ms
        self.published += 1


@dataclass(frozen=True, slots=True)
class Drafted:
    """An attempt that published drafts nobody has withdrawn or replaced yet."""

    attempt: int
    fence: int


ENDINGS = frozenset(
    {EventKind.TURN_ATTEMPT_FAILED, EventKind.TURN_SUPERSEDED, EventKind.TURN_FAILED}
)
"""Events recording that an attempt ended without its reply."""


def with_withdrawal(
    ops: Sequence[WriteOp[Any]], drafted: Drafted | None
) -> tuple[Sequence[WriteOp[Any]], bool]:
    """``ops`` with the withdrawal of ``drafted``'s drafts just before the event recording
    the attempt's end without its reply, if the unit records one; and whether the drafts
    are settled by the unit (withdrawn, or replaced by the committed reply)."""
    if drafted is None:
        return ops, False
    for i, op in enumerate(ops):
        if not isinstance(op, AppendEvent):
            continue
        event = op.event
        if event.kind is EventKind.TURN_COMMITTED:
            return ops, True
        if event.kind in ENDINGS:
            data = {"attempt": drafted.attempt, "fence": drafted.fence}
            withdrawal = FabricEvent(
                EventKind.REPLY_DRAFT_WITHDRAWN, event.at_ms, event.correlation, data
            )
            return [*ops[:i], AppendEvent(withdrawal), *ops[i:]], True
    return ops, False


CLOSING = frozenset(
    {
        EventKind.TURN_COMMITTED,
        EventKind.RESPONSE_QUEUED,
        EventKind.TURN_FAILED,
        EventKind.TURN_SUPERSEDED,
    }
)
"""Stored events after which a turn has no drafts to show: its reply is committed (the
replies are queued in the same unit), it failed, or it was superseded."""


@dataclass(slots=True)
class _TurnDrafts:
    closed: bool = False
    withdrawn: int = 0
    """Drafts of this attempt and the earlier ones are withdrawn."""
    attempt: int = 0
    fence: int = 0
    shown: tuple[int, int] | None = None
    """The (attempt, fence) whose text the watcher has; ``length``: its length."""
    length: int = 0


class DraftFilter:
    """Which drafts one watcher gets (see the module docstring). Feed it every stored event
    forwarded (``observe``), in order, and ask ``admit`` for each draft before forwarding
    it. Pure: no I/O, no clock. It remembers the latest ``max_turns`` turns."""

    def __init__(self, max_turns: int = 256) -> None:
        self._turns: OrderedDict[TurnId, _TurnDrafts] = OrderedDict()
        self._max_turns = max_turns

    def _of(self, turn_id: TurnId) -> _TurnDrafts:
        state = self._turns.get(turn_id)
        if state is None:
            state = self._turns[turn_id] = _TurnDrafts()
            if len(self._turns) > self._max_turns:
                self._turns.popitem(last=False)
        return state

    def observe(self, event: FabricEvent) -> None:
        turn_id = event.correlation.turn_id
        if turn_id is None:
            return
        kind = event.kind
        if kind in CLOSING:
            self._of(turn_id).closed = True
        elif kind is EventKind.REPLY_DRAFT_WITHDRAWN:
            state = self._of(turn_id)
            state.withdrawn = max(state.withdrawn, _int(event.data.get("attempt")))
        elif kind is EventKind.TURN_STARTED:
            state = self._of(turn_id)
            state.attempt = max(state.attempt, _int(event.data.get("attempt")))

    def admit(self, draft: Draft) -> bool:
        """Whether to forward ``draft`` (and remember that the watcher has it)."""
        state = self._of(draft.turn_id)
        if (
            state.closed
            or draft.attempt <= state.withdrawn
            or draft.attempt < state.attempt
            or draft.fence < state.fence
        ):
            return False
        state.attempt, state.fence = draft.attempt, draft.fence
        if state.shown != (draft.attempt, draft.fence):
            state.shown, state.length = (draft.attempt, draft.fence), 0
        if draft.offset > state.length:
            return False  # a gap (a lost or dropped draft): wait for the whole text
        state.length = draft.end
        return True


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
