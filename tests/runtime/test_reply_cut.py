"""A new customer message stops the paced rest of a reply (DESIGN §3 invariant 6's one
exception, §16): the unsent later parts are cut, audited as ``reply.cut``, never sent, and
left out of the history the next turn's pipeline sees.

A real SQLite file, the real ingress, runtime and relay, a virtual clock; WhatsApp paces
a reply's later parts by 1 s (acf's default).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.signals import DeliveryStatus
from acf.ports.event_store import EventQuery
from acf.ports.outbox import OutboxRow
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.invariants import check_all


class ThreeParts:
    """Answers in three parts named after the customer's last words; keeps the replies
    each run's context showed (``seen``)."""

    name = "three-parts"
    version = "1"

    def __init__(self) -> None:
        self.seen: list[list[Mapping[str, Any]]] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.seen.append([dict(r) for r in ctx.replies_history])
        said = ctx.messages[-1].text
        return PipelineResult(
            segments=tuple(ReplySegment(f"{said}: {n}") for n in ("one", "two", "three"))
        )


def texts(seen: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r["text"]) for r in seen]


async def first_part_out(h: Harness) -> int:
    """Advance until the channel accepted something; when it did."""
    while not h.channel.sends:
        await h.advance(50)
    return h.channel.sends[0].at_ms


async def cuts(h: Harness) -> list[FabricEvent]:
    return await h.store.events.query(TENANT, EventQuery(kinds=(EventKind.REPLY_CUT,), limit=1_000))


async def rows(h: Harness, session_id: str) -> dict[str, OutboxRow]:
    found = await h.store.outbox.for_session(TENANT, session_id)
    return {str(r.payload["text"]): r for r in found}


async def test_a_message_during_pacing_cuts_the_rest_of_the_reply(tmp_path: Path) -> None:
    pipeline = ThreeParts()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        first = await h.send("ana", "hello", Channel.WHATSAPP)
        await first_part_out(h)
        assert [s.text for s in h.channel.sends] == ["hello: one"]  # the rest is paced
        await h.send("ana", "wait, another thing", Channel.WHATSAPP)
        await h.run_until_idle()
        # The rest of the first reply never went out; the newer message's turn answered
        # in full (a reply to the newest message is never cut).
        assert h.replies("ana") == [
            "hello: one",
            "wait, another thing: one",
            "wait, another thing: two",
            "wait, another thing: three",
        ]
        by_text = await rows(h, first.session_id)
        cut = [by_text["hello: two"], by_text["hello: three"]]
        assert [(r.status, r.attempts) for r in cut] == [(DeliveryStatus.CUT, 0)] * 2
        (event,) = await cuts(h)
        turn = await h.store.turns.get(TENANT, cut[0].turn_id)
        assert turn is not None
        assert event.data == {
            "turn_id": turn.turn_id,
            "outbox_ids": [r.outbox_id for r in cut],
            "positions": [1, 2],
            "to_seq": 1,
            "newer_seq": 2,
        }
        c = event.correlation
        assert (c.session_id, c.turn_id, c.group_id, c.trace_id) == (
            first.session_id,
            turn.turn_id,
            turn.group_id,
            turn.trace_id,
        )
        assert c.agent_version is not None and c.config_version is not None

        # The next request's history: what the customer saw, never the cut parts.
        await h.send("ana", "thanks", Channel.WHATSAPP)
        await h.run_until_idle()
        assert texts(pipeline.seen[1]) == ["hello: one"]
        assert texts(pipeline.seen[2]) == [
            "hello: one",
            "wait, another thing: one",
            "wait, another thing: two",
            "wait, another thing: three",
        ]
        oldest = pipeline.seen[2][0]
        assert (oldest["turn_id"], oldest["status"]) == (turn.turn_id, "sent")
        assert oldest["at_ms"] == by_text["hello: one"].created_at_ms
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_part_the_relay_already_tried_is_not_cut(tmp_path: Path) -> None:
    pipeline = ThreeParts()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        first = await h.send("ana", "hello", Channel.WHATSAPP)
        sent_at = await first_part_out(h)
        # The second part's first try fails after its pause (a 429 asking for 10 s) ...
        h.channel.fail_next(1, definite=False, retry_after_ms=10_000)
        await h.advance(sent_at + 1_500 - h.clock.now_ms())
        tried = (await rows(h, first.session_id))["hello: two"]
        assert (tried.status, tried.attempts) == (DeliveryStatus.PENDING, 1)
        # ... and the customer writes during the wait: the tried part still goes out, only
        # the untried third is cut.
        await h.send("ana", "wait", Channel.WHATSAPP)
        await h.run_until_idle()
        assert h.replies("ana") == [
            "hello: one",
            "hello: two",
            "wait: one",
            "wait: two",
            "wait: three",
        ]
        by_text = await rows(h, first.session_id)
        assert by_text["hello: two"].status is DeliveryStatus.SENT
        assert by_text["hello: three"].status is DeliveryStatus.CUT
        (event,) = await cuts(h)
        assert event.data["outbox_ids"] == [by_text["hello: three"].outbox_id]
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_an_unpaced_reply_goes_out_whole(tmp_path: Path) -> None:
    """Without a pause between parts (the web chat paces nothing) nothing is cut: the
    parts follow each other at once."""
    pipeline = ThreeParts()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        await h.send("ana", "hello", Channel.WEB)
        await first_part_out(h)
        await h.send("ana", "more", Channel.WEB)
        await h.run_until_idle()
        assert h.replies("ana")[:3] == ["hello: one", "hello: two", "hello: three"]
        assert await cuts(h) == []


def test_cut_is_terminal_and_follows_only_pending() -> None:
    s = DeliveryStatus
    assert s.CUT.may_follow(s.PENDING)
    assert not any(s.CUT.may_follow(current) for current in s if current is not s.PENDING)
    assert not any(new.may_follow(s.CUT) for new in s)
    assert s.CUT.is_terminal and s.FAILED.is_terminal and not s.SENT.is_terminal
