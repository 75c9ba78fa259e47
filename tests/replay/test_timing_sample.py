"""The synthetic chat-timing sample kept in the repository: it is what its generator
makes, its timing looks like real chat, and `acf replay` plays it."""

import os
import subprocess
import sys
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

from acf.replay.sample import fragment_gap_s, generate, render
from acf.replay.sources import read
from acf.stats import percentile

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "chat-timing-sample.csv"
ACF = [str(Path(sys.executable).parent / "acf")]


def test_the_file_is_what_the_generator_makes() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == render(generate()), (
        "regenerate it: .venv/bin/python -m acf.replay.sample examples/chat-timing-sample.csv"
    )
    assert SAMPLE.stat().st_size < 300_000


def test_the_gap_quantiles_are_interpolated_between_the_given_points() -> None:
    assert [round(fragment_gap_s(u), 6) for u in (0.1, 0.5, 0.9)] == [4.0, 19.0, 99.0]
    assert 4.0 < fragment_gap_s(0.3) < 19.0
    assert fragment_gap_s(0.0) == 0.7 and round(fragment_gap_s(1.0), 6) == 420.0


def test_its_timing_is_like_real_chat() -> None:
    lines = read(SAMPLE)
    by_conversation = defaultdict(list)
    for line in lines:
        by_conversation[line.conversation].append(line)
    gaps = [
        (b.at_ms - a.at_ms) / 1000
        for chat in by_conversation.values()
        for a, b in pairwise(chat)
        if a.sender == b.sender
    ]
    assert 3 <= percentile(gaps, 10) <= 5
    assert 15 <= percentile(gaps, 50) <= 24
    assert 80 <= percentile(gaps, 90) <= 120
    assert sum(gap < 2 for gap in gaps) >= 10  # bursts of fragments a second apart
    senders = [len({line.sender for line in chat}) for chat in by_conversation.values()]
    assert min(senders) >= 2 and max(senders) >= 4
    assert len(by_conversation) >= 100


def test_acf_replay_plays_it() -> None:
    done = subprocess.run(
        [*ACF, "replay", str(SAMPLE), "--typing-cps", "5", "--conversations", "12"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "acf adaptive" in done.stdout and "naive" in done.stdout
