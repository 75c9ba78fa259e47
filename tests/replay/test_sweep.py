"""The policy sweep: grids, Pareto front and targets (pure), and a tiny sweep end to end
against the real runtime on the virtual clock, in one process and in two."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acf.domain.channels import Channel
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.replay import sweep as sweep_module
from acf.replay.grid import ACF, GridError, load_grid, variants
from acf.replay.sweep import FIXED, FIXED_SUPERSEDE, NAIVE, Figures, main, pareto_front, targets

BASE = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000)


def figs(
    talked_over: float = 2.0,
    wait_p95_ms: float = 1500.0,
    replies: float = 90.0,
    talked_over_typing: float | None = None,
    unanswered: float = 0.0,
) -> Figures:
    return Figures(
        replies, talked_over, talked_over_typing, 1000.0, wait_p95_ms, 2000.0, 0, 0, unanswered
    )


BASELINES = {
    FIXED: figs(talked_over=4.0, wait_p95_ms=1500, replies=90),
    FIXED_SUPERSEDE: figs(talked_over=1.8),
    NAIVE: figs(talked_over=8.0, wait_p95_ms=0, replies=100, talked_over_typing=16.0),
}


@pytest.mark.parametrize(
    ("mine", "expected"),
    [
        (figs(talked_over=1.5, wait_p95_ms=1500, replies=90), [True, True, True, True, True]),
        # 50 % of fixed, not below +supersede
        (figs(talked_over=2.0), [True, False, True, True, True]),
        (figs(talked_over=2.1), [False, False, True, True, True]),
        (figs(talked_over=1.7), [True, True, True, True, True]),
        (figs(talked_over=1.0, wait_p95_ms=1501), [True, True, False, True, True]),
        (figs(talked_over=1.0, replies=90.5), [True, True, True, False, True]),
        # a strategy that drops replies: its wait leaves the dropped runs out
        (figs(talked_over=1.0, wait_p95_ms=0, unanswered=0.1), [True, True, True, True, False]),
    ],
)
def test_targets_without_typing(mine: Figures, expected: list[bool]) -> None:
    checks = targets(mine, BASELINES, typing=False)
    assert [met for _, met in checks] == expected
    assert "50 % of fixed 1.5 s" in checks[0][0]


@pytest.mark.parametrize(
    ("mine", "expected"),
    [
        (figs(talked_over_typing=8.0, wait_p95_ms=3000), [True, True, True]),  # half of 16
        (figs(talked_over_typing=8.1, wait_p95_ms=2000), [False, True, True]),
        (figs(talked_over_typing=1.0, wait_p95_ms=3001), [True, False, True]),
        (figs(talked_over_typing=None, wait_p95_ms=1000), [False, True, True]),  # not measured
        # the strict talked-over does not count with typing
        (figs(talked_over=50.0, talked_over_typing=2.0, wait_p95_ms=5000), [True, False, True]),
        (figs(talked_over_typing=1.0, wait_p95_ms=0, unanswered=2.0), [True, True, False]),
    ],
)
def test_targets_with_typing(mine: Figures, expected: list[bool]) -> None:
    assert [met for _, met in targets(mine, BASELINES, typing=True)] == expected


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([(1, 1)], [True]),
        ([(1, 2), (2, 1)], [True, True]),  # neither dominates
        ([(1, 1), (2, 2)], [True, False]),
        ([(1, 1), (1, 2)], [True, False]),  # as good on one, worse on the other
        ([(1, 1), (1, 1)], [True, True]),  # equal points are both on the front
        ([(3, 0), (0, 3), (2, 2), (2, 3), (1, 1)], [True, True, False, False, True]),
    ],
)
def test_pareto_front(points: list[tuple[float, float]], front: list[bool]) -> None:
    assert pareto_front(points) == front


def test_variants_are_the_default_then_each_valid_distinct_point() -> None:
    grids = [
        {"window_ms": [800, 1200], "pace": [False, True]},
        {"window_ms": [800], "pace": [False]},  # a duplicate of the first grid's first point
        {"min_window_ms": [0, 1000, 2500]},  # 2500 > window 1200: refused
    ]
    found, skipped = variants(BASE, grids)
    assert [v.name for v in found] == [ACF, "v01", "v02", "v03", "v04", "v05"]
    assert found[0].policy == BASE and found[0].params == ()
    assert [v.params for v in found[1:]] == [
        (("window_ms", 800), ("pace", False)),
        (("window_ms", 800), ("pace", True)),
        (("window_ms", 1200), ("pace", True)),  # 1200 / false is the default
        (("min_window_ms", 0),),
        (("min_window_ms", 1000),),
    ]
    assert found[2].policy.pace and found[2].policy.window_ms == 800
    assert found[2].policy.max_window_ms == BASE.max_window_ms
    assert [p for p, _ in skipped] == [(("min_window_ms", 2500),)]
    assert "min_window_ms" in skipped[0][1]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("window_ms: [800]\nwindow: [1]\n", r"'window' is not a policy field.*window_ms"),
        ("mode: [fixed]\n", r"'mode' is not a policy field"),
        ("window_ms: 800\n", r"window_ms: expected a non-empty list"),
        ("window_ms: []\n", r"window_ms: expected a non-empty list"),
        ("window_ms: [800.5]\n", r"window_ms: 800.5 is not a int"),
        ("window_ms: [true]\n", r"window_ms: True is not a int"),
        ("pace: [1]\n", r"pace: 1 is not a bool"),
        ("- window_ms: [800]\n- 3\n", r"expected a mapping"),
        ("", r"expected a mapping"),
        ("window_ms: [800\n", r"grid.yaml"),
    ],
)
def test_a_bad_grid_is_refused_clearly(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(GridError, match=error):
        load_grid(path)


@pytest.mark.parametrize(
    ("name", "channel", "fields"),
    [
        (
            "replay-grid.yaml",
            Channel.WHATSAPP,
            {"window_ms", "min_window_ms", "incomplete_window_ms", "pace"},
        ),
        (
            "replay-grid-typing.yaml",
            Channel.WEB,
            {"typing_grace_ms", "typing_hold_ms"},
        ),
    ],
)
def test_the_repository_grids_are_moderate_and_valid(
    name: str, channel: Channel, fields: set[str]
) -> None:
    grids = load_grid(Path(__file__).parents[2] / "benchmarks" / name)
    found, skipped = variants(DEFAULT_CHANNEL_POLICIES[channel], grids)
    assert 5 <= len(found) <= 21 and not skipped
    assert {field for grid in grids for field in grid} == fields


def sample(tmp_path: Path) -> Path:
    rows = ["conversation,sender,timestamp,text"]
    t = 1_546_336_800.0
    for conv in range(4):
        base = t + conv * 600
        rows += [
            f"{conv},ann,{base},I want to change",
            f"{conv},ann,{base + 0.8},my delivery address",
            f"{conv},bob,{base + 30},sure. what is the new one?",
            f"{conv},ann,{base + 36},it is 5 Main Street and",
            f"{conv},ann,{base + 38},the flat is number 4",
        ]
    path = tmp_path / "sample.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acf.replay.sweep", *args],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "250"},
    )


def test_a_tiny_sweep_gives_the_same_results_in_one_process_and_in_two(tmp_path: Path) -> None:
    log = sample(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("window_ms: [800, 1600]\nmin_window_ms: [0, 1000]\n")
    common = ["--half", "all", "--typing-cps", "5", "--latency-ms", "1500", "--grid", str(grid)]
    results = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        done = sweep(tmp_path, str(log), *common, "--jobs", jobs, "--json", str(out))
        assert done.returncode == 0, done.stderr
        assert "skipped {'window_ms': 800, 'min_window_ms': 1000}" in done.stderr
        results.append(json.loads(out.read_text()))
    one, two = results
    assert [r["name"] for r in one["rows"]] == [
        FIXED_SUPERSEDE,
        FIXED,
        "fixed 1.2 s",
        NAIVE,
        ACF,
        "v01",
        "v02",
        "v03",
    ]
    for a, b in zip(one["rows"], two["rows"], strict=True):
        assert {**a, "seconds": 0} == {**b, "seconds": 0}
    rows = {r["name"]: r for r in one["rows"]}
    assert rows[NAIVE]["measure"]["replies"] == 20 and rows[NAIVE]["kind"] == "baseline"
    assert rows[NAIVE]["targets"] is None
    assert rows["v01"]["params"] == {"window_ms": 800, "min_window_ms": 0}
    assert rows["v01"]["policy"]["window_ms"] == 800
    assert rows["v02"]["params"] == {"window_ms": 1600, "min_window_ms": 0}
    assert set(rows[ACF]["targets"]) == {
        "talked-over during typing <= 50 % of naive's",
        "wait p95 <= 3 s",
        "unanswered runs <= naive's",
    }
    assert rows[ACF]["supersede"] == "supersede" and rows[FIXED]["supersede"] == "queue"
    assert all(r["measure"]["unanswered_runs"] == 0 for r in one["rows"])
    assert (one["format"], one["talk_margin_ms"], one["gap_ms"]) == ("csv", 2000, 600_000)
    assert all(r["per_100"]["talked_over_typing"] is not None for r in one["rows"])
    assert any(r["pareto"] for r in one["rows"])
    assert len(one["skipped"]) == 1
    assert one["skipped"][0]["params"] == {"window_ms": 800, "min_window_ms": 1000}
    assert "min_window_ms" in one["skipped"][0]["reason"]
    assert "talked-over typing" in done.stdout and "v03" in done.stdout


def test_a_bad_sweep_exits_2_with_the_reason(tmp_path: Path) -> None:
    log = sample(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("windw_ms: [800]\n")
    done = sweep(tmp_path, str(log), "--grid", str(grid))
    assert done.returncode == 2
    assert "'windw_ms' is not a policy field" in done.stderr
    done = sweep(tmp_path, str(tmp_path / "missing.csv"))
    assert done.returncode == 2 and "no such file" in done.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--conversations", "-1"], "--conversations must be at least 1"),
        (["--conversations", "0"], "--conversations must be at least 1"),
        (["--json", "{log}/out.json"], "--json: cannot write {log}/out.json: {log} is not a dir"),
        (["--json", "{tmp}"], "it is a directory"),
    ],
)
def test_bad_options_exit_2_before_any_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    log = sample(tmp_path)
    filled = [a.format(log=log, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exited:
        main([str(log), "--jobs", "1", *filled])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert error.format(log=log, tmp=tmp_path) in err
    assert "replays in" not in err  # nothing was replayed


def test_an_unwritable_proc_path_is_refused_before_replaying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    with pytest.raises(SystemExit) as exited:
        main([str(sample(tmp_path)), "--jobs", "1", "--json", "/proc/acf-sweep.json"])
    assert exited.value.code == 2
    assert "cannot write /proc/acf-sweep.json" in capsys.readouterr().err


def test_a_failed_write_after_the_replays_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, report: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep_module, "write_report", full_disk)
    out = tmp_path / "out.json"
    assert main([str(sample(tmp_path)), "--half", "all", "--jobs", "1", "--json", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: cannot write {out}: [Errno 28] No space left on device" in err
