"""A ``python`` pipeline that writes its answer word by word through ``ctx.draft`` on the
runtime's clock, for the draft tests over HTTP and in Chromium (DESIGN §16).

Its answer repeats the turn's messages, then ``FILLER``. A turn of one message containing
``hold`` drafts a few words, then waits until it is cancelled (a supersede does that)."""

import asyncio

from acf import PipelineResult
from acf.ports.pipeline import TurnContext

FILLER = "and here is a long answer written word by word for you".split()
HELD_AFTER = 3


def answer(texts: list[str]) -> list[str]:
    """The words of the answer to a turn of ``texts``, each with its trailing space."""
    said = " / ".join(texts)
    return [f"{w} " for w in f"You said: {said}. {' '.join(FILLER)}".split()]


class Writer:
    name, version = "writer", "1"

    def __init__(self, every_ms: int = 60) -> None:
        self.every_ms = every_ms

    async def run(self, ctx: TurnContext) -> PipelineResult:
        texts = [m.text or "" for m in ctx.messages]
        held = len(texts) == 1 and "hold" in texts[0]
        text = ""
        for i, word in enumerate(answer(texts)):
            text += word
            await ctx.draft(text)
            if held and i + 1 == HELD_AFTER:
                await asyncio.Event().wait()  # until the supersede cancels it
            await ctx.clock.sleep(self.every_ms / 1000)
        return PipelineResult.reply(text.strip())


def build(every_ms: int = 60) -> Writer:
    return Writer(every_ms)


def config(every_ms: int = 60) -> dict[str, object]:
    """Two tenants (the HTTP fixtures make a key for each), agent ``support`` writing."""
    tenants = {}
    for tenant in ("acme", "globex"):
        tenants[tenant] = {
            "channels": {
                "web": {
                    "mode": "fixed",
                    "window_ms": 100,
                    "min_window_ms": 50,
                    "max_window_ms": 500,
                }
            },
            "agents": {
                "support": {
                    "pipeline": {
                        "kind": "python",
                        "factory": "tests.http.drafting:build",
                        "options": {"every_ms": every_ms},
                    }
                }
            },
        }
    return {"version": 1, "tenants": tenants}
