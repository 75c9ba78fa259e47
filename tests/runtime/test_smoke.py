from pathlib import Path

from acf.testing.harness import Harness


async def test_one_message_one_reply(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.send("alice", "hello there, how are you?")
        await h.run_until_idle()
        assert h.replies("alice") == ["echo: hello there, how are you?"]


async def test_burst_gives_one_reply(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        for text in ["hi", "I need", "to change my", "order please"]:
            await h.send("alice", text)
            await h.advance(300)
        await h.run_until_idle()
        assert h.replies("alice") == ["echo: hi | I need | to change my | order please"]


async def test_a_users_own_pipeline_runs_in_the_harness(tmp_path: Path) -> None:
    from acf.domain.replies import PipelineResult
    from acf.ports.pipeline import TurnContext
    from acf.testing.harness import HarnessOptions

    class Shout:
        name = "shout"
        version = "2"

        async def run(self, ctx: TurnContext) -> PipelineResult:
            return PipelineResult.reply(" ".join(m.text or "" for m in ctx.messages).upper())

    async with Harness(tmp_path, HarnessOptions(pipeline=Shout())) as h:
        await h.send("alice", "where is my parcel?")
        await h.run_until_idle()
        assert h.replies("alice") == ["WHERE IS MY PARCEL?"]
