"""What a turn sends (``acf.pipelines.agent_service.prepare``), over an in-memory row
store: the key is written ahead before it returns; the same turn prepared again (its memo
lost in a crash) gets the same key; more messages get a new key superseding the open one;
a stale question is abandoned with its event; another profile's open row is closed; a
REPLAY turn sends the failed execution's key again (on the row that failed), or, for a
turn that failed outside an execution, a new one with its messages' text."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import structlog

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import Conflict
from acf.domain.events import Correlation
from acf.domain.messages import InboundMessage
from acf.domain.session_key import SessionKey
from acf.pipelines.agent_service.prepare import PREPARE_STEP, prepare, row_of
from acf.ports.dead_letters import DeadLetter
from acf.testing.clock import VirtualClock

S = AgentSessionStatus
KEY = SessionKey("acme", "support", "alice", "web")
FIELDS = AgentServicePipelineFields.model_validate(
    {"kind": "agent_service", "base_url": "http://h", "profile": "support"}
)


@dataclass
class Rows:
    """``ctx.agent_sessions`` in memory: every save, with its event."""

    rows: dict[str, AgentSessionRow] = field(default_factory=dict)
    saved: list[tuple[AgentSessionRow, str | None, dict[str, Any]]] = field(default_factory=list)

    async def open(self) -> AgentSessionRow | None:
        return next((r for r in self.rows.values() if r.status.is_open), None)

    async def latest(self) -> AgentSessionRow | None:
        found = sorted(self.rows.values(), key=lambda r: r.last_interaction_at_ms)
        return found[-1] if found else None

    async def save(self, row: AgentSessionRow, event: str | None = None, **data: Any) -> None:
        self.rows[row.row_id] = row
        self.saved.append((row, event, data))


@dataclass
class FakeContext:
    messages: list[InboundMessage]
    agent_sessions: Rows = field(default_factory=Rows)
    memo: dict[tuple[str, str], Any] | None = field(default_factory=dict)
    """None: nothing is remembered (the memo was lost in a crash)."""
    clock: VirtualClock = field(default_factory=VirtualClock)
    history: list[InboundMessage] = field(default_factory=list)
    replies_history: list[Mapping[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    replay: DeadLetter | None = None
    correlation: Correlation = field(
        default_factory=lambda: Correlation("acme", "0" * 31 + "1", "s1", "t1", "g1")
    )
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))

    async def linked_identities(self) -> Mapping[str, str]:
        return {}

    async def step(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        key = (name, repr(args))
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        result = await fn(*args)
        if self.memo is not None:
            self.memo[key] = result
        return result


def message(seq: int, text: str) -> InboundMessage:
    return InboundMessage(f"m{seq}", "s1", KEY, seq, f"p{seq}", seq * 1000, text=text)


async def test_the_key_is_written_ahead_and_found_again() -> None:
    ctx = FakeContext([message(1, "Where is my parcel?")])
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    ((row, event, _),) = ctx.agent_sessions.saved
    assert event is None and row.status is S.ACTIVE and row.execution_open
    assert row.execution_key == prepared.key and prepared.supersedes is None
    assert (row.tenant, row.session_id, row.agent, row.profile) == (
        "acme",
        "s1",
        "support",
        "support",
    )
    assert prepared.request.message.text == "Where is my parcel?"
    assert await row_of(ctx, prepared) == row  # type: ignore[arg-type]
    assert list(ctx.memo or {}) == [(PREPARE_STEP, repr((["m1"], None)))]

    # A retry finds the memo: nothing is written again.
    again = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert again == prepared and len(ctx.agent_sessions.saved) == 1


async def test_a_lost_memo_still_gives_the_same_key() -> None:
    ctx = FakeContext([message(1, "Where is my parcel?")], memo=None)
    first = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    ctx.clock.advance(5_000)
    second = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert second.key == first.key and second.request == first.request
    assert len(ctx.agent_sessions.saved) == 1  # the row already held it


async def test_more_messages_supersede_the_open_execution() -> None:
    ctx = FakeContext([message(1, "Where is my parcel?")])
    first = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    ctx.messages.append(message(2, "The blue one"))
    second = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert second.key != first.key and second.supersedes == first.key
    assert second.request.message.text == "Where is my parcel?\nThe blue one"
    (row,) = ctx.agent_sessions.rows.values()  # the same row, the new key open on it
    assert row.execution_key == second.key and row.execution_open


def waiting(asked_at_ms: int, profile: str = "support") -> AgentSessionRow:
    return AgentSessionRow(
        tenant="acme",
        row_id="r0",
        session_id="s1",
        agent="support",
        profile=profile,
        status=S.AWAITING_USER,
        created_at_ms=0,
        last_interaction_at_ms=asked_at_ms,
        agent_session_id="as-1",
        pending_ask_id="ask-1",
        pending_question="Which size?",
        asked_at_ms=asked_at_ms,
        execution_key="k0",
    )


@pytest.mark.parametrize("late_ms", [0, 299_999])
async def test_an_answer_in_time_goes_to_the_same_row(late_ms: int) -> None:
    ctx = FakeContext([message(1, "M")])
    ctx.agent_sessions.rows["r0"] = waiting(ctx.clock.now_ms() - late_ms)
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert prepared.expired is None and prepared.supersedes is None
    assert prepared.request.answer is not None and prepared.request.answer.ask_id == "ask-1"
    assert prepared.request.agent_session_id == "as-1"
    (row,) = ctx.agent_sessions.rows.values()
    assert row.row_id == "r0" and row.status is S.ACTIVE and row.pending_ask_id == "ask-1"


async def test_a_stale_question_is_abandoned_with_its_event() -> None:
    ctx = FakeContext([message(1, "Hello again")])
    asked_at = ctx.clock.now_ms() - 300_000
    ctx.agent_sessions.rows["r0"] = waiting(asked_at)
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert prepared.expired == {"ask_id": "ask-1", "asked_at_ms": asked_at}
    assert prepared.request.answer is None and prepared.request.agent_session_id is None
    (gone, event, data), (fresh, _, _) = ctx.agent_sessions.saved
    assert gone.row_id == "r0" and gone.status is S.ABANDONED
    assert (event, data) == ("agent_service.ask_expired", prepared.expired)
    assert fresh.row_id != "r0" and fresh.status is S.ACTIVE


async def test_another_profiles_open_row_is_closed_quietly() -> None:
    ctx = FakeContext([message(1, "Hi")])
    ctx.agent_sessions.rows["r0"] = replace(waiting(ctx.clock.now_ms()), profile="billing")
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    (gone, event, _), (fresh, _, _) = ctx.agent_sessions.saved
    assert gone.status is S.ABANDONED and event is None and prepared.expired is None
    assert fresh.profile == "support" and prepared.request.agent_session_id is None


async def test_a_key_no_row_holds_is_a_conflict() -> None:
    ctx = FakeContext([message(1, "Hi")])
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    ctx.agent_sessions.rows.clear()
    with pytest.raises(Conflict, match=prepared.key):
        await row_of(ctx, prepared)  # type: ignore[arg-type]


def letter(request: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        tenant="acme",
        dead_letter_id="d1",
        session_id="s1",
        agent="support",
        turn_id="t0",
        group_id="g0",
        trace_id="0" * 31 + "1",
        pipeline="agent_service",
        error="HTTP 503",
        attempts=4,
        created_at_ms=1,
        request=request,
    )


async def test_a_replay_sends_the_failed_key_again_on_the_row_that_failed() -> None:
    asked = {
        "conversation_id": "s1",
        "message": {"text": "M"},
        "user_context": {"tenant": "acme"},
        "answer": {"ask_id": "ask-1", "text": "M"},
        "execution_key": "k-failed",
        "agent_session_id": "as-1",
    }
    ctx = FakeContext([], replay=letter(asked))
    failed = replace(waiting(0), status=S.FAILED, execution_key="k-failed", pending_ask_id=None)
    ctx.agent_sessions.rows["r0"] = failed
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert (prepared.key, prepared.supersedes) == ("k-failed", None)
    request = prepared.request
    assert request.agent_session_id == "as-1" and request.message.text == "M"
    assert request.answer is not None and request.answer.ask_id == "ask-1"
    (row,) = ctx.agent_sessions.rows.values()  # the row that failed, open again
    assert row.row_id == "r0" and row.status is S.ACTIVE and row.execution_open
    assert row.execution_key == "k-failed" and row.agent_session_id == "as-1"
    assert await row_of(ctx, prepared) == row  # type: ignore[arg-type]


async def test_a_replay_of_a_failed_turn_is_a_new_execution_of_its_messages() -> None:
    ctx = FakeContext([], replay=letter({"messages": ["Cancel", "order 7"]}))
    prepared = await prepare(ctx, FIELDS)  # type: ignore[arg-type]
    assert prepared.request.message.text == "Cancel\norder 7"
    assert prepared.request.agent_session_id is None and prepared.request.answer is None
    (row,) = ctx.agent_sessions.rows.values()
    assert row.execution_key == prepared.key and row.execution_open
