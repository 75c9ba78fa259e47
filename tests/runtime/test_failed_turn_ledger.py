"""A turn that fails while a call of its group is still ``started`` leaves that call
``in_doubt`` (with an event), not ``started`` forever: no turn will learn its outcome."""

from pathlib import Path

from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult
from acf.domain.tools import LedgerStatus, SideEffectPolicy, ToolSpec
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.tools import ToolBackend

RECEIPT = ToolSpec("send_receipt", SideEffectPolicy.IDEMPOTENT, business_key="{order}")


class ChangesItsMind:
    """Calls the tool on its first run only (as a model may choose another path on a
    re-run), then fails on every run."""

    name = "fickle"
    version = "1"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.runs += 1
        if self.runs == 1:
            await ctx.tools.call("send_receipt", {"order": 7})
        raise RuntimeError("model down")


async def test_a_failed_turn_marks_its_started_calls_in_doubt(tmp_path: Path) -> None:
    settings = AgentSettings(max_attempts=2, retry_backoff_ms=10)
    options = HarnessOptions(
        pipeline=ChangesItsMind(), settings=settings, tools=(ToolBackend(RECEIPT),)
    )
    async with Harness(tmp_path, options) as h:
        h.crash_at("tool_returned")  # the backend acted; the ledger never learns it
        await h.send("alice", "Send me the receipt for order 7.")
        await h.run_until_idle()
        assert h.replies("alice") == ["Sorry, something went wrong; a person will follow up."]
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="send_receipt"))
        assert entry.status is LedgerStatus.IN_DOUBT
        assert entry.error is not None and "turn failed" in entry.error
        events = await h.store.events.query(TENANT, EventQuery(kinds=(EventKind.TOOL_IN_DOUBT,)))
        assert [e.data["execution_id"] for e in events] == [entry.execution_id]
        assert events[0].data["reason"] == "turn_failed"
