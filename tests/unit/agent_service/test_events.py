"""The service's events as the turn's effects (``acf.pipelines.agent_service.events``):
progress events for thoughts and tools (status text only where the agent shows it), the
tool log, the side-effect marks the supersede hook reads, drafts of the whole answer so
far only where the channel streams them, and the agent session named once."""

from dataclasses import dataclass, field
from typing import Any

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.pipelines.agent_service.client import StreamedEvent
from acf.pipelines.agent_service.events import THOUGHT_CHARS, EventProcessor
from acf.pipelines.agent_service.protocol import (
    AgentEvent,
    AnswerChunkData,
    SideEffect,
    ThoughtData,
    ToolEndData,
    ToolStartData,
)
from acf.ports.pipeline import InDoubt
from acf.testing.clock import VirtualClock

SID = "as-1"
SOURCE = "agent_service"
ID = {"id": 7}


@dataclass
class FakeContext:
    capabilities: ChannelCapabilities
    clock: VirtualClock = field(default_factory=VirtualClock)
    emitted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)
    gate: list[bool] = field(default_factory=list)
    """Each ``enter_irreversible`` call's ``force``."""
    passed_before: bool = False

    async def enter_irreversible(self, force: bool = False) -> None:
        self.gate.append(force)
        if self.passed_before:
            raise InDoubt("an earlier attempt passed the gate")

    async def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        self.emitted.append((name, dict(data or {})))

    async def draft(self, text: str) -> None:
        self.drafts.append(text)


def streamed(n: int, event: AgentEvent, header: str | None = SID) -> StreamedEvent:
    return StreamedEvent(str(n), event, header)


async def feed(
    channel: Channel, show_status: bool = True
) -> tuple[EventProcessor, FakeContext, list[str]]:
    ctx = FakeContext(DEFAULT_CAPABILITIES[channel])
    named: list[str] = []

    async def on_named(agent_session_id: str) -> None:
        named.append(agent_session_id)

    p = EventProcessor(ctx, show_status, on_named)  # type: ignore[arg-type]
    p.start()
    events: list[AgentEvent] = [
        ThoughtData(agent_session_id=SID, text="x" * 500),
        ToolStartData(
            agent_session_id=SID, tool="lookup", args={"id": 7}, status_text="Looking..."
        ),
        ToolEndData(agent_session_id=SID, tool="lookup", ok=True, summary="found"),
        ToolStartData(
            agent_session_id=SID, tool="refund", args={"id": 7}, side_effect=SideEffect.IRREVERSIBLE
        ),
        ToolEndData(agent_session_id=SID, tool="refund", ok=True),
        AnswerChunkData(agent_session_id=SID, text="Refund **done**"),
        AnswerChunkData(agent_session_id=SID, text=" for order 7."),
    ]
    for n, event in enumerate(events, start=1):
        await p.on_event(streamed(n, event))
        ctx.clock.advance(10)
    return p, ctx, named


async def test_events_become_progress_events_a_tool_log_and_drafts() -> None:
    p, ctx, named = await feed(Channel.WEB)
    assert ctx.emitted == [
        ("agent_service.thought", {"text": "x" * THOUGHT_CHARS}),
        (
            "tool.started",
            {
                "tool": "lookup",
                "side_effect": "none",
                "source": "agent_service",
                "status_text": "Looking...",
            },
        ),
        (
            "tool.finished",
            {"tool": "lookup", "ok": True, "source": "agent_service", "summary": "found"},
        ),
        (
            "tool.started",
            {"tool": "refund", "side_effect": "irreversible", "source": "agent_service"},
        ),
        ("tool.finished", {"tool": "refund", "ok": True, "source": "agent_service"}),
    ]
    start = 1_700_000_000_000
    assert p.tool_log == [
        {
            "at_ms": start + 20,
            "tool": "lookup",
            "args": {"id": 7},
            "outcome": "ok",
            "summary": "found",
        },
        {"at_ms": start + 40, "tool": "refund", "args": {"id": 7}, "outcome": "ok", "summary": ""},
    ]
    assert p.side_effect_started and p.side_effect_done
    assert ctx.gate == [True]  # the side effect passed the irreversible gate, forced, once
    assert ctx.drafts == ["Refund **done**", "Refund **done** for order 7."]
    assert p.text == "Refund **done** for order 7."
    assert named == [SID]  # once
    assert [kind for kind, _ in p.offsets][:2] == ["THOUGHT", "TOOL_START"]
    assert [ms for _, ms in p.offsets] == [0, 10, 20, 30, 40, 50, 60]


async def test_only_streaming_channels_get_drafts_and_status_text_is_optional() -> None:
    p, ctx, _ = await feed(Channel.WHATSAPP, show_status=False)
    assert ctx.drafts == []
    assert all("status_text" not in data for _, data in ctx.emitted)
    assert p.text == "Refund **done** for order 7."


async def test_a_failed_side_effect_is_started_but_not_done_and_a_restart_voids_the_answer() -> (
    None
):
    ctx = FakeContext(DEFAULT_CAPABILITIES[Channel.SMS])
    p = EventProcessor(ctx, True)  # type: ignore[arg-type]
    start = ToolStartData(agent_session_id=SID, tool="ship", side_effect=SideEffect.REVERSIBLE)
    await p.on_event(streamed(1, start))
    assert p.side_effect_started and not p.side_effect_done
    await p.on_event(streamed(2, ToolEndData(agent_session_id=SID, tool="ship", ok=False)))
    assert not p.side_effect_done and p.tool_log[0]["outcome"] == "failed"
    await p.on_event(streamed(3, AnswerChunkData(agent_session_id=SID, text="Half")))
    await p.on_restart()
    assert p.text == "" and p.side_effect_started  # the tool did start
    # An end without its start (a restart in between) is still logged.
    await p.on_event(streamed(4, ToolEndData(agent_session_id=SID, tool="other", ok=True)))
    assert p.tool_log[-1]["args"] == {} and not p.side_effect_done


async def test_a_side_effect_passes_the_gate_once_and_a_recovered_attempt_goes_on() -> None:
    ctx = FakeContext(DEFAULT_CAPABILITIES[Channel.SMS], passed_before=True)
    p = EventProcessor(ctx, True)  # type: ignore[arg-type]
    lookup = ToolStartData(agent_session_id=SID, tool="lookup")
    ship = ToolStartData(agent_session_id=SID, tool="ship", side_effect=SideEffect.IRREVERSIBLE)
    await p.on_event(streamed(1, lookup))
    assert ctx.gate == [] and not p.side_effect_started  # no side effect: no gate
    await p.on_event(streamed(2, ship))
    await p.on_event(streamed(3, ship))
    assert ctx.gate == [True] and p.side_effect_started  # InDoubt: marked before, goes on
