"""A turn that fails while a call of its group is still ``started`` settles that call, not
leaving it ``started`` forever (no turn will learn its outcome): ``in_doubt`` when a side
effect may have happened (a person checks), ``failed`` when running it again is safe."""

from pathlib import Path

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult
from acf.domain.tools import LedgerStatus, SideEffectPolicy, ToolSpec
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.tools import ToolBackend


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
            await ctx.tools.call("act", {"order": 7})
        raise RuntimeError("model down")


@pytest.mark.parametrize(
    ("policy", "status", "event"),
    [
        (SideEffectPolicy.IRREVERSIBLE, LedgerStatus.IN_DOUBT, EventKind.TOOL_IN_DOUBT),
        (SideEffectPolicy.IDEMPOTENT, LedgerStatus.FAILED, EventKind.TOOL_EXECUTION_FAILED),
    ],
)
async def test_a_failed_turn_settles_its_started_calls(
    tmp_path: Path, policy: SideEffectPolicy, status: LedgerStatus, event: EventKind
) -> None:
    settings = AgentSettings(max_attempts=2, retry_backoff_ms=10)
    tool = ToolSpec("act", policy, business_key="{order}")
    options = HarnessOptions(
        pipeline=ChangesItsMind(), settings=settings, tools=(ToolBackend(tool),)
    )
    async with Harness(tmp_path, options) as h:
        h.crash_at("tool_returned")  # the backend acted; the ledger never learns it
        await h.send("alice", "Do it for order 7.")
        await h.run_until_idle()
        assert h.replies("alice") == ["Sorry, something went wrong; a person will follow up."]
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="act"))
        assert entry.status is status
        assert entry.error is not None and "turn failed" in entry.error
        events = await h.store.events.query(TENANT, EventQuery(kinds=(event,)))
        assert [e.data["execution_id"] for e in events] == [entry.execution_id]
        assert events[0].data["reason"] == "turn_failed"
