"""The benchmark counts turns that failed and replies that were fallbacks, and never waits
for an echo that will not come (issue 17); ``acf bench --sweep`` reports cost per turn."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acf.adapters.sqlite.database import Durability
from acf.bench.marks import Marks
from acf.bench.measure import Unanswered, answered
from acf.bench.subjects import AcfSubject
from acf.bench.sweep import point
from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext

ACF = str(Path(sys.executable).parent / "acf")


class Refusing:
    """A pipeline that always raises: every turn ends FAILED with the fallback reply."""

    name, version = "refusing", "1"

    def __init__(self, marks: Marks) -> None:
        self.marks = marks

    async def run(self, ctx: TurnContext) -> PipelineResult:
        raise RuntimeError("the model is down")


async def test_failed_turns_and_fallbacks_are_counted_not_waited_for() -> None:
    result = await point(lambda: AcfSubject(Durability.NORMAL, Refusing), 4, timeout_s=600)
    assert (result.failed_turns, result.fallback_replies) == (4, 4)
    assert not result.correct
    assert result.error is not None and "answered otherwise" in result.error


async def test_a_correct_point_counts_nothing_and_costs_cpu() -> None:
    result = await point(lambda: AcfSubject(Durability.NORMAL), 50, timeout_s=600)
    assert result.correct
    assert (result.failed_turns, result.fallback_replies, result.lease_lost) == (0, 0, 0)
    assert result.turns_per_s > 0 and result.cpu_ms_per_turn > 0


def test_the_sweep_reports_each_size(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    done = subprocess.run(
        [ACF, "bench", "--sweep", "20,40", "--durability", "normal", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(out.read_text())
    assert [p["sessions"] for p in body["points"]] == [20, 40]
    assert all(p["failed_turns"] == 0 and p["fallback_replies"] == 0 for p in body["points"])
    assert body["all_correct"] is True
    assert "CPU ms / turn" in done.stdout


def test_the_sweep_rejects_bad_sizes() -> None:
    done = subprocess.run(
        [ACF, "bench", "--sweep", "1k,5k"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--sweep takes session counts" in done.stderr


async def test_a_reply_delivered_before_the_wait_begins_is_not_waited_for() -> None:
    """The overhead loop waits after ``receive``, which may already have delivered."""
    marks = Marks()
    marks.expect("hello")
    marks.deliver("hello")
    await asyncio.wait_for(answered(marks, ["hello"], "overhead", timeout_s=600), 5)


async def test_the_wait_wakes_on_each_delivery_and_gives_up_on_a_fallback() -> None:
    """The wait sleeps until a delivery wakes it (no polling on the measured loop): an awaited
    reply ends it, and a reply that answers nothing (a fallback) makes it give up at once."""
    marks = Marks()
    marks.expect("a")
    marks.expect("b")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, marks.deliver, "a")
    loop.call_later(0.02, marks.deliver, "the fallback reply")
    with pytest.raises(Unanswered, match="1 of 2 turn"):
        await asyncio.wait_for(answered(marks, ["a", "b"], "throughput", timeout_s=600), 5)
