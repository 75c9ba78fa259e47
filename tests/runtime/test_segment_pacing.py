"""A multi-segment reply is paced per channel (the policy's ``segment_pacing_ms``, or the
pipeline's longer ``delay_ms``), with the typing indicator shown before each later part."""

import itertools
from pathlib import Path

import pytest

from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult, ReplySegment
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import Harness, HarnessOptions


class ThreeParts:
    name = "three"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        return PipelineResult(
            segments=(
                ReplySegment("First."),
                ReplySegment("Second."),
                ReplySegment("Third.", delay_ms=2500),
            )
        )


@pytest.mark.parametrize(
    ("channel", "gaps_ms", "typing_before"),
    [
        (Channel.WHATSAPP, [1000, 2500], 2),  # 1 s pacing; the pipeline's 2.5 s is longer
        (Channel.SMS, [1500, 2500], 0),  # paced so the parts arrive in order; no indicator
        (Channel.WEB, [0, 2500], 1),  # no pacing of its own; typing during the 2.5 s
    ],
)
async def test_later_segments_are_paced_with_typing(
    tmp_path: Path, channel: Channel, gaps_ms: list[int], typing_before: int
) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=ThreeParts())) as h:
        await h.send("alice", "tell me everything", channel=channel, provider_message_id="in-1")
        await h.run_until_idle()
        sends = h.channel.sends
        assert [s.text for s in sends] == ["First.", "Second.", "Third."]
        assert [b.at_ms - a.at_ms for a, b in itertools.pairwise(sends)] == gaps_ms
        first_sent = sends[0].at_ms
        between = [t for t in h.channel.typing if t.at_ms >= first_sent]
        assert len(between) == typing_before
        assert all(t.last_inbound_id == "in-1" for t in between)


async def test_a_retry_resumes_after_the_provider_messages_already_accepted(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=ThreeParts())) as h:
        h.channel.fail_next(1, definite=False, parts_accepted=2)  # 2 parts in, then a 503
        await h.send("alice", "tell me everything", channel=Channel.WEB)
        await h.run_until_idle()
        first = h.channel.sends[0]
        assert (first.text, first.parts_sent) == ("First.", 2)  # resumed after part 2
        assert [s.parts_sent for s in h.channel.sends[1:]] == [0, 0]
        row = await h.store.outbox.get("t1", first.outbox_id)
        assert row is not None and (row.parts_sent, row.attempts) == (2, 2)


async def test_a_provider_asking_to_wait_is_waited_for(tmp_path: Path) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=ThreeParts())) as h:
        h.channel.fail_next(1, definite=False, retry_after_ms=30_000)  # a 429, "retry after 30"
        accepted = await h.send("alice", "tell me everything", channel=Channel.WEB)
        await h.run_until_idle()
        first = h.channel.sends[0]
        assert first.text == "First."
        events = await h.store.events.query(
            "t1", EventQuery(session_id=accepted.session_id, kinds=(EventKind.MESSAGE_RECEIVED,))
        )
        received_at = events[0].at_ms
        assert first.at_ms - received_at >= 30_000  # not the relay's own 1 s backoff
