"""`acf bench` end to end at a tiny size: it runs, reports every subject and writes JSON.

Timings are not asserted (machines are shared and noisy); the benchmark's figures live in
docs/benchmarks.md.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ACF = str(Path(sys.executable).parent / "acf")


def test_bench_reports_all_subjects_and_targets(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            ACF,
            "bench",
            "--turns",
            "10",
            "--sessions",
            "30",
            "--memory-sessions",
            "10",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(out.read_text())
    subjects = [r["subject"] for r in body["results"]]
    assert subjects[0].startswith("acf") and "naive (direct call)" in subjects
    assert any(s.startswith("LangGraph") for s in subjects)
    for result in body["results"]:
        assert result["turns_per_s"] > 0
        assert result["overhead"]["to_start_p50_ms"] >= 0
    assert set(body["targets"]) >= {">= 1,000 turns/s", "<= 1 KB per idle session"}
    assert "acf turns/s ÷ LangGraph turns/s" in body["ratios"]
    assert body["machine"]["cpus"] >= 1
    assert "target overhead p50 <= 2 ms" in done.stdout


def test_bench_rejects_a_bad_durability() -> None:
    done = subprocess.run(
        [ACF, "bench", "--durability", "sometimes", "--no-peer"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--durability must be full or normal" in done.stderr
