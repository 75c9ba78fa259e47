"""`acf replay` end to end on a small sample, against the real runtime on a virtual clock."""

import os
import subprocess
import sys
from pathlib import Path

ACF = [str(Path(sys.executable).parent / "acf")]


def sample(tmp_path: Path) -> Path:
    rows = ["conversation,sender,timestamp,text"]
    t = 1_546_336_800.0
    for conv in range(4):
        base = t + conv * 600
        rows += [
            f"{conv},ann,{base},I want to change",
            f"{conv},ann,{base + 0.8},my delivery address",
            f"{conv},bob,{base + 30},sure. what is the new one?",
            f"{conv},ann,{base + 40},it is 5 Main Street.",
        ]
    path = tmp_path / "sample.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_replay_prints_all_strategies_and_writes_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "out" / "replay.png"
    done = subprocess.run(
        [
            *ACF,
            "replay",
            str(sample(tmp_path)),
            "--latency-ms",
            "1000",
            "--typing-cps",
            "8",
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert set(rows) >= {"acf adaptive", "fixed 1.5 s", "fixed 1.2 s", "naive"}
    assert rows["naive"].split("│")[2].strip() == "16"  # one reply per message
    assert (
        "16 messages, 12 same-sender runs" in done.stdout.replace("\n", " ")
        or "16 messages" in done.stdout
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replay_rejects_a_bad_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("who,when\n")
    done = subprocess.run([*ACF, "replay", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "header must name sender, timestamp and text" in done.stderr
    spaces = tmp_path / "spaces.csv"
    spaces.write_text("sender,timestamp,text\nann,1546336800,hello\nann,1546336801,   \n")
    done = subprocess.run([*ACF, "replay", str(spaces)], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr  # not a traceback
    assert (
        done.stderr.strip()
        == f"error: {spaces}:line 3: text: only whitespace (leave it empty instead)"
    )


def test_replay_counts_tokens_when_the_pipeline_is_a_streaming_llm(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ACF, "replay", str(sample(tmp_path)), "--llm-tokens-per-s", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert done.returncode == 0, done.stderr
    assert "LLM 300 ms to first token, 30 tokens/s, 60-token answers (2300 ms)" in " ".join(
        done.stdout.split()
    )
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    naive = [cell.strip() for cell in rows["naive"].split("│")]
    # 16 requests of 1000 prompt tokens plus their text, 60 answer tokens each, per 100 msgs
    assert int(naive[7].replace(",", "")) > 100 * (1000 + 60) // 1
    assert naive[8] == "0"
