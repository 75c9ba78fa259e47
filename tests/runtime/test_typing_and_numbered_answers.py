"""While a pipeline runs the customer sees typing (where the channel shows it, refreshed
before it expires); a number answering buttons shown as numbered options reaches the
pipeline as that button."""

from pathlib import Path

import pytest

from acf.domain.channels import Channel
from acf.domain.replies import Button, PipelineResult, ReplySegment
from acf.ports.pipeline import TurnContext
from acf.testing.harness import Harness, HarnessOptions


class Slow:
    name = "slow"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await ctx.clock.sleep(10)
        return PipelineResult.reply("done")


@pytest.mark.parametrize(
    ("channel", "shown_at_s"),
    [
        (Channel.TELEGRAM, [0, 4, 8]),  # lasts 5 s: shown again every 4 s
        (Channel.WHATSAPP, [0]),  # lasts 25 s: once is enough for 10 s
        (Channel.SMS, []),  # no indicator
    ],
)
async def test_typing_shows_while_the_pipeline_runs(
    tmp_path: Path, channel: Channel, shown_at_s: list[int]
) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=Slow())) as h:
        accepted = await h.send("alice", "hello", channel=channel, provider_message_id="in-1")
        await h.run_until_idle()
        assert h.replies("alice") == ["done"]
        typed = h.channel.typing
        assert all(t.last_inbound_id == "in-1" and t.key.channel is channel for t in typed)
        started = min((t.at_ms for t in typed), default=0)
        assert [(t.at_ms - started) // 1000 for t in typed] == shown_at_s
        assert accepted.session_id


class Ask:
    """Asks with two buttons, then says which one the customer chose."""

    name = "ask"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        last = ctx.messages[-1]
        if last.button is not None:
            return PipelineResult.reply(f"chose {last.button.button_id} ({last.text})")
        buttons = (Button("yes", "Yes"), Button("no", "No"))
        return PipelineResult(segments=(ReplySegment("Refund €20?", buttons=buttons),))


@pytest.mark.parametrize(
    ("channel", "answer"), [(Channel.SMS, "chose no (2)"), (Channel.WHATSAPP, None)]
)
async def test_a_number_answers_buttons_shown_as_options(
    tmp_path: Path, channel: Channel, answer: str | None
) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=Ask())) as h:
        await h.send("alice", "refund please", channel=channel)
        await h.run_until_idle()
        await h.send("alice", "2", channel=channel)
        await h.run_until_idle()
        replies = h.replies("alice")
        assert replies[0] == "Refund €20?"
        # On WhatsApp the buttons were shown: "2" is text, so it is asked again.
        assert replies[1] == (answer or "Refund €20?")


async def test_a_number_never_answers_buttons_the_customer_did_not_see(tmp_path: Path) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=Ask())) as h:
        h.channel.fail_next(1, definite=True)  # the question with buttons never arrives
        await h.send("alice", "refund please", channel=Channel.SMS)
        await h.run_until_idle()
        await h.send("alice", "2", channel=Channel.SMS)
        await h.run_until_idle()
        assert h.replies("alice") == ["Refund €20?"]  # asked again: "2" was just text
