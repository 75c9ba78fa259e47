"""Wasted pipeline work: the runs of turns that never committed (pure)."""

import pytest

from acf.replay.meter import PipelineRun, Waste, waste

RUNS = [
    PipelineRun("t1", 1, 2000),  # committed
    PipelineRun("t2", 1, 700),  # cancelled midway by a supersede
    PipelineRun("t3", 1, 2000),  # finished, then discarded at the commit
    PipelineRun("t4", 1, 300),  # failed once ...
    PipelineRun("t4", 2, 2000),  # ... and committed on its second attempt
]


@pytest.mark.parametrize(
    ("committed", "expected"),
    [
        ({"t1", "t4"}, Waste(2, 2700)),
        ({"t1", "t2", "t3", "t4"}, Waste(0, 0)),
        (set(), Waste(5, 7000)),
        ({"t1", "t2", "t3"}, Waste(2, 2300)),  # every attempt of a turn that never committed
    ],
)
def test_waste_is_the_runs_of_turns_that_never_committed(
    committed: set[str], expected: Waste
) -> None:
    assert waste(RUNS, committed) == expected


def test_no_runs_waste_nothing() -> None:
    assert waste([], {"t1"}) == Waste()
