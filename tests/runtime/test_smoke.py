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
