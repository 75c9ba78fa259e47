"""How much pipeline time a strategy wasted on superseded work.

The replay's pipelines report every run to a ``PipelineMeter``: the turn and attempt it ran
for and the pipeline time it spent, also when a supersede cancelled it midway. Whether a run
was wasted is decided after the replay, from the store: a run of a turn that never committed
was superseded (cancelled by a newer message, or finished and then discarded at the commit),
so none of its time reached the customer (``waste``, pure). A strategy that never supersedes
wastes nothing; the time a ready reply is held (hold-while-typing) is no pipeline time.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext


@dataclass(frozen=True, slots=True)
class PipelineRun:
    turn_id: str
    attempt: int
    elapsed_ms: int


@dataclass(frozen=True, slots=True)
class Waste:
    runs: int = 0
    """Pipeline runs whose result no customer got."""
    ms: int = 0
    """The pipeline time they spent."""


class PipelineMeter:
    """Collects the pipeline runs of one replay."""

    def __init__(self) -> None:
        self.runs: list[PipelineRun] = []

    def record(self, ctx: TurnContext, elapsed_ms: int) -> None:
        turn = ctx.correlation.turn_id
        self.runs.append(PipelineRun(str(turn), ctx.attempt, elapsed_ms))


def waste(runs: Iterable[PipelineRun], committed: Collection[str]) -> Waste:
    """The runs of turns not in ``committed`` (turn ids) and their time."""
    lost = [run for run in runs if run.turn_id not in committed]
    return Waste(len(lost), sum(run.elapsed_ms for run in lost))


class MeteredPause:
    """The replay's plain pipeline: a pause of ``latency_ms``, then a one-word reply."""

    name = "metered-pause"
    version = "1"

    def __init__(self, latency_ms: int, meter: PipelineMeter) -> None:
        self.latency_ms = latency_ms
        self.meter = meter

    async def run(self, ctx: TurnContext) -> PipelineResult:
        started = ctx.clock.now_ms()
        try:
            if self.latency_ms:
                await ctx.clock.sleep(self.latency_ms / 1000)
        finally:  # a supersede cancels it: the time until then is spent all the same
            self.meter.record(ctx, ctx.clock.now_ms() - started)
        return PipelineResult.reply("ok")
