"""``PipelineResult.awaiting_answer`` on the embedded runtime (DESIGN §5, seed 004 Story 6):
a reply that asks a question the agent waits for sets ``meta.awaiting_answer``, so the
customer's next message closes the accumulation window at once, as a button does; the
next commit that does not await clears it and windows wait again."""

from pathlib import Path

from acf.domain.accumulation import CloseReason
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions


class Asks:
    """Asks for the order number when told "refund"; answers anything else."""

    name = "asks"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        text = " ".join(m.text or "" for m in ctx.messages)
        if "refund" in text:
            return PipelineResult.reply("Which order number?", awaiting_answer=True)
        return PipelineResult.reply(f"noted: {text}")


async def awaiting(h: Harness, session_id: str) -> object:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    return session.state["meta"].get("awaiting_answer")


async def test_an_awaited_answer_closes_the_window_at_once(tmp_path: Path) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=Asks())) as h:
        accepted = await h.send("ana", "I want a refund.")
        await h.run_until_idle()
        sid = accepted.session_id
        assert h.replies("ana") == ["Which order number?"]
        assert await awaiting(h, sid) is True

        # "1234" alone would hold an adaptive window open (a short text): not now.
        answered_at = h.clock.now_ms()
        await h.send("ana", "1234")
        assert h.replies("ana")[-1] == "noted: 1234"
        assert h.clock.now_ms() == answered_at
        closes = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.WINDOW_CLOSED,))
        )
        assert closes[-1].data["reason"] == CloseReason.AWAITED_ANSWER
        assert await awaiting(h, sid) is None  # cleared by the commit that does not await

        await h.send("ana", "1234")  # no question pending: the window waits again
        assert h.replies("ana")[-1] == "noted: 1234"  # the earlier reply, still
        assert len(h.replies("ana")) == 2
        await h.run_until_idle()
        assert len(h.replies("ana")) == 3
        closes = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.WINDOW_CLOSED,))
        )
        assert closes[-1].data["reason"] != CloseReason.AWAITED_ANSWER
