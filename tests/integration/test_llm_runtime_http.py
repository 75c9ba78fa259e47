"""The ``llm`` pipeline on the real runtime over real HTTP, where the runtime's timing
matters: a correction while the answer streams (the stream is closed, the restart sees both
messages, the tokens saved are counted), a correction while an irreversible tool runs
(QUEUE, the tool is not cancelled), a crash between the completion and the commit (the
recovery reuses the stored completion), a paced reply cut by a new message (the cut parts
are not in the next request's history) and a long session within its token budget.

The runtime is the harness's (a real SQLite file, the gateway, the ledger) on its virtual
clock: windows, pacing, leases and tool backends wait on it. The model is the production
client (``LazyClient``: ``LlmClient`` through the ``openai`` SDK) against ``FakeOpenAI`` on
loopback, in real time. ``Rig.until`` moves the virtual clock only while no completion is
in flight, so no request ever meets a deadline the test made up.
"""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.records import TurnRecord
from acf.domain.tools import LedgerStatus, SideEffectPolicy, ToolSpec
from acf.observability.metrics import FabricMetrics
from acf.pipelines.llm.completion import Completion
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.llm.summary import SUMMARY_INSTRUCTION
from acf.pipelines.llm.tokens import load_counter
from acf.ports.checkpoints import Phase
from acf.ports.clock import Clock
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.service.event_feed import ObservedUnitOfWork
from acf.testing.fake_openai import FakeOpenAI, FakeRequest
from acf.testing.fake_openai_script import Answer, FakeToolCall, Item
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.tools import ToolBackend
from tests.integration.test_llm_pipeline import LOOKUP, ORDER_ARGS, fields

POLL_S = 0.005
"""Real time the test waits while a completion is in flight."""
MAX_POLLS = 20_000
"""Polls before ``Rig.until`` gives up: a bound, not a timing."""
CLOSE_BOUND_S = 10.0
"""How long the test waits at most for the superseded stream to end: a bound, not a
timing (the time it took is printed: ``pytest -s``)."""

SHIP = ToolSpec(
    "ship_order",
    SideEffectPolicy.IRREVERSIBLE,
    args_schema=ORDER_ARGS,
    business_key="{order_id}",
    description="Ship an order (cannot be undone)",
)
LONG = " ".join(f"word{n}" for n in range(200))
"""An answer of 200 completion tokens (the fake streams one word per token)."""


class Watched:
    """The production ``Completer``, counting the completions in flight: while one is, only
    real time moves the test on."""

    def __init__(self, inner: LazyClient) -> None:
        self.inner = inner
        self.running = 0

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: Any = None,
        on_event: Any = None,
    ) -> Completion:
        self.running += 1
        try:
            return await self.inner.complete(
                request, clock=clock, deadline_ms=deadline_ms, on_delta=on_delta, on_event=on_event
            )
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Rig:
    h: Harness
    fake: FakeOpenAI
    model: Watched
    metrics: FabricMetrics

    async def until(self, done: Callable[[], bool], limit_ms: int = 600_000) -> None:
        """Run the runtime until ``done()``: real time while a completion is in flight,
        else the virtual clock to its next due sleeper."""
        h = self.h
        end = h.clock.now_ms() + limit_ms
        for _ in range(MAX_POLLS):
            await h.settle()
            if done():
                return
            if self.model.running:
                await asyncio.sleep(POLL_S)
                continue
            due = h.clock.next_due_ms()
            if due is None or due > end:
                raise AssertionError(f"stuck: nothing due within {limit_ms} ms")
            h.clock.advance_to(due)
        raise AssertionError(f"not done after {MAX_POLLS} polls")

    async def idle(self) -> None:
        await self.until(lambda: self.h.idle and not self.model.running)

    async def events(self, *kinds: EventKind) -> list[FabricEvent]:
        return await self.h.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))

    async def progress(self, name: str) -> list[Mapping[str, Any]]:
        found = await self.events(EventKind.TURN_PROGRESS)
        return [e.data for e in found if e.data.get("name") == name]

    async def records(self) -> list[TurnRecord]:
        h = self.h
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        found = [await h.store.turns.get_record(TENANT, t.turn_id) for t in turns]
        return [r for r in found if r is not None and r.outcome.value == "committed"]

    def metric(self, name: str) -> float:
        """The sum of a metric's samples over every label set."""
        return sum(
            sample.value
            for family in self.metrics.registry.collect()
            for sample in family.samples
            if sample.name == name
        )


@asynccontextmanager
async def open_rig(
    tmp_path: Path,
    backends: Sequence[ToolBackend] = (ToolBackend(LOOKUP, 10),),
    settings: AgentSettings | None = None,
    **changes: Any,
) -> AsyncIterator[Rig]:
    async with FakeOpenAI() as fake:
        llm = fields(base_url=fake.base_url, enforcement={}, **changes)
        model = Watched(LazyClient(llm))
        specs = [b.spec for b in backends]
        prompt = PromptSource("You help {tenant_display_name}.", "Shop")
        pipeline = LlmPipeline(llm, prompt, specs, model)
        options = HarnessOptions(
            pipeline=pipeline,
            tools=tuple(backends),
            settings=settings or AgentSettings(history_limit=200),
        )
        try:
            async with Harness(tmp_path, options) as h:
                metrics = FabricMetrics()
                h.store.uow = ObservedUnitOfWork(h.store.uow, [metrics.observe])
                yield Rig(h, fake, model, metrics)
        finally:
            await pipeline.aclose()


def user_texts(request: FakeRequest) -> list[str]:
    return [str(m["content"]) for m in request.messages if m["role"] == "user"]


def assistant_texts(request: FakeRequest) -> str:
    return "\n".join(str(m.get("content")) for m in request.messages if m["role"] == "assistant")


def client_sockets(port: int) -> int:
    """Established TCP connections of this machine to ``port`` on loopback, client side."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields_ = line.split()
            remote, state = fields_[2], fields_[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def acf_tasks() -> set[str]:
    """Names of the live tasks running acf's, the SDK's or the HTTP client's code."""
    found = set()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        where = code.co_filename if code is not None else ""
        if any(part in where for part in ("/acf/", "/openai/", "/httpx", "/httpcore/")):
            found.add(f"{task.get_name()} {getattr(code, 'co_qualname', '')}")
    return found


# -- 1. a correction while the answer streams ---------------------------------------------


async def test_a_correction_while_the_answer_streams_closes_the_stream(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        fake.script(Answer(LONG))  # a first turn: what a reply of this model costs
        await h.send("alice", "Hello")
        await rig.idle()
        idle_tasks = acf_tasks()
        fake.script(
            Answer(LONG, ttft_ms=50, tokens_per_s=20),  # 10 s if nobody stops it
            Answer("Order 8 ships tomorrow."),
        )
        await h.send("alice", "Where is order 7?")
        await rig.until(
            lambda: fake.completions_requested == 2 and fake.completions[1].tokens_streamed >= 3
        )
        slow = fake.completions[1]
        await h.send("alice", "Sorry, I meant order 8.", settle=False)
        accepted_at = time.monotonic()
        await asyncio.wait_for(slow.ended.wait(), CLOSE_BOUND_S)
        assert slow.client_closed and slow.client_closed_at is not None
        latency_ms = (slow.client_closed_at - accepted_at) * 1000
        print(f"\nthe correction accepted -> the stream closed: {latency_ms:.1f} ms")
        assert not slow.completed and not slow.cut
        assert 0 < slow.tokens_streamed < slow.tokens_planned == 200
        assert client_sockets(fake.port) == 0  # its connection (the pool's only one) is gone
        await rig.idle()

        assert h.replies("alice") == [LONG, "Order 8 ships tomorrow."]
        assert len(h.channel.sends) == 2
        assert fake.completions_requested == 3
        restarted = fake.completions[2]
        assert restarted.messages[-2:] == [
            {"role": "user", "content": "Where is order 7?"},
            {"role": "user", "content": "Sorry, I meant order 8."},
        ]
        assert assistant_texts(restarted) == LONG  # the first turn's reply, nothing drafted
        (superseded,) = await rig.events(EventKind.TURN_SUPERSEDED)
        (cancelled,) = await rig.progress("llm.generation_cancelled")
        streamed = cancelled["completion_tokens_streamed"]
        assert 0 < streamed <= slow.tokens_streamed
        assert rig.metric("acf_llm_generations_cancelled_total") == 1
        assert rig.metric("acf_llm_tokens_saved_total") == 200 - streamed
        assert superseded.data["reason"] == "new_messages"
        # Nothing left behind: no task of the cancelled attempt, and no connection but the
        # one the restart's request keeps alive in the pool.
        assert acf_tasks() == idle_tasks
        assert client_sockets(fake.port) <= 1
        records = await rig.records()
        assert [r.details["llm"]["completions"] for r in records] == [1, 1]


# -- 2. a correction while an irreversible tool runs ----------------------------------------


async def test_a_correction_while_an_irreversible_tool_runs_is_queued(tmp_path: Path) -> None:
    async with open_rig(tmp_path, backends=(ToolBackend(SHIP, delay_ms=5_000),)) as rig:
        h, fake = rig.h, rig.fake
        fake.script(
            Answer("", (FakeToolCall("ship_order", {"order_id": "7"}),)),
            Answer("Order 7 is on its way."),
            Answer("Gift wrapping noted for the next order."),
        )
        await h.send("alice", "Ship order 7 please.")
        await rig.until(
            lambda: (
                fake.completions_requested == 1
                and fake.completions[0].ended.is_set()
                and not rig.model.running
            )
        )
        (started,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="ship_order"))
        assert started.status is LedgerStatus.STARTED  # the backend is working on it
        await h.send("alice", "Oh, and gift wrap it!")
        await rig.idle()

        assert h.replies("alice") == [
            "Order 7 is on its way.",
            "Gift wrapping noted for the next order.",
        ]
        (done,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="ship_order"))
        assert done.status is LedgerStatus.SUCCEEDED
        assert list(h.tally.tool_runs.values()) == [1]
        assert len(await rig.events(EventKind.TURN_IRREVERSIBLE_STARTED)) == 1
        assert not await rig.events(EventKind.TURN_SUPERSEDED)
        assert not await rig.progress("llm.generation_cancelled")
        first, second = await rig.records()
        assert first.details["mode"] == "queue" and first.details["queued_unseen"]
        assert first.details["outcomes"] == ["TOOL_DONE"]
        assert fake.completions_requested == 3
        assert user_texts(fake.completions[1]) == ["Ship order 7 please."]
        last = fake.completions[2]
        assert last.messages[-1] == {"role": "user", "content": "Oh, and gift wrap it!"}
        assert "Order 7 is on its way." in assistant_texts(last)
        assert second.details["outcomes"] == ["ANSWERED"]


# -- 3. a crash between the completion and the commit ---------------------------------------


async def test_a_crash_before_the_commit_reuses_the_stored_completion(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        fake.script(Answer("Hello, how can I help?"))
        h.crash_at(Phase.PIPELINE_FINISHED)
        await h.send("alice", "hi")
        await rig.idle()
        assert h.crashes == 1
        assert h.replies("alice") == ["Hello, how can I help?"]
        assert len(h.channel.sends) == 1
        assert fake.completions_requested == 1  # the recovery found it in the step memo
        (record,) = await rig.records()
        assert record.details["llm"]["reused_completions"] == 1
        assert record.details["llm"]["completion_tokens"] == fake.completions[0].tokens_streamed


# -- 4. a paced reply cut by a new message --------------------------------------------------


async def test_a_reply_cut_during_pacing_is_not_in_the_next_history(tmp_path: Path) -> None:
    parts = ["Order 7 left our warehouse.", "It travels with DHL.", "Expect it on Friday."]
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        fake.script(
            Answer("", (FakeToolCall("send_messages", {"messages": parts}),)),
            Answer("Your address is updated."),
        )
        await h.send("alice", "Where is order 7?", channel=Channel.WHATSAPP)
        await rig.until(lambda: len(h.replies("alice")) == 1)
        await h.send("alice", "Please change my address.", channel=Channel.WHATSAPP)
        await rig.idle()

        assert h.replies("alice") == [parts[0], "Your address is updated."]
        (cut,) = await rig.events(EventKind.REPLY_CUT)
        assert cut.data["positions"] == [1, 2]
        assert fake.completions_requested == 2
        assert fake.completions[1].messages[1:] == [
            {"role": "user", "content": "Where is order 7?"},
            {"role": "assistant", "content": parts[0]},  # what the customer saw, only
            {"role": "user", "content": "Please change my address."},
        ]


# -- 5. a long session within its token budget ---------------------------------------------

BUDGET = 300
EVERY = 5
TURNS = 100
"""100 turns: a session of 200 messages (the customer's and the agent's)."""
SUMMARY_HEAD = SUMMARY_INSTRUCTION.split("{", 1)[0]
SUMMARY_SHOWN = "Summary of the earlier conversation (older than the messages below):\n"


def is_summary(request: Mapping[str, Any]) -> bool:
    messages = request.get("messages") or []
    return bool(messages) and str(messages[0].get("content", "")).startswith(SUMMARY_HEAD)


def summary_of(request: Mapping[str, Any]) -> str:
    """What the model writes for a summary request: how many customer lines it folded."""
    lines = str(request["messages"][-1]["content"]).splitlines()
    folded = sum(1 for line in lines if line.startswith("Customer: "))
    return f"The customer asked about {folded} more orders; all were answered."


def long_session_model(request: Mapping[str, Any]) -> Item:
    if is_summary(request):
        return Answer(summary_of(request))
    asked = str(request["messages"][-1]["content"])
    return Answer(f"About your question ({asked}): it is in hand, nothing else is needed.")


async def test_a_long_session_stays_within_its_token_budget(tmp_path: Path) -> None:
    counter = await load_counter("m1")
    async with open_rig(tmp_path, history_tokens=BUDGET, summary_every_turns=EVERY) as rig:
        h, fake = rig.h, rig.fake
        fake.responder = long_session_model
        turn_of: list[int] = []  # the turn of each completion request
        for turn in range(TURNS):
            await h.send("alice", f"What about order {turn}, is it shipped yet?")
            await rig.idle()
            turn_of += [turn] * (fake.completions_requested - len(turn_of))
            await h.advance(60_000)
        replies = h.replies("alice")
        assert len(replies) == TURNS

        summaries = [i for i, r in enumerate(fake.completions) if is_summary(r.body)]
        turns = [turn_of[i] for i in summaries]
        assert turns, "no summary was ever made"
        assert all(b - a >= EVERY for a, b in itertools.pairwise(turns))
        shown: str | None = None
        for index, request in enumerate(fake.completions):
            if is_summary(request.body):
                previous = str(request.messages[-1]["content"])
                assert f"Summary so far:\n{shown or '(none yet)'}" in previous  # it rolls
                shown = summary_of(request.body)
                continue
            turn = turn_of[index]
            system = str(request.messages[0]["content"])
            history = request.messages[1:-1]
            assert request.messages[-1]["content"].startswith(f"What about order {turn},")
            if shown is None:  # nothing folded yet: every earlier message is there
                assert SUMMARY_SHOWN not in system
                assert len(history) == 2 * turn
            else:
                assert system.endswith(SUMMARY_SHOWN + shown)
            tokens = sum(counter.message(m) for m in history)
            tokens += counter.text(shown or "")
            assert tokens <= BUDGET, f"turn {turn}: {tokens} tokens of history"
            if turn:
                assert history[-1] == {"role": "assistant", "content": replies[turn - 1]}
