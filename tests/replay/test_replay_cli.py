"""`acf replay` end to end on a small sample, against the real runtime on a virtual clock."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acf.entrypoints.cli import app
from acf.replay import report
from acf.replay.sources import read
from acf.replay.split import SPLIT_SEED, split

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


def replay(*args: str, columns: int = 250) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ACF, "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def rows_of(stdout: str) -> dict[str, list[str]]:
    """Each table row's cells by its first cell (the strategy)."""
    rows = {}
    for line in stdout.splitlines():
        if "│" in line:
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            rows[cells[0]] = cells
    return rows


def test_replay_prints_all_strategies_and_writes_json_and_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "out" / "replay.png"
    out = tmp_path / "out" / "replay.json"
    log = sample(tmp_path)
    done = replay(
        str(log),
        "--latency-ms",
        "1000",
        "--typing-cps",
        "8",
        "--plot",
        str(plot),
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    rows = rows_of(done.stdout)
    names = ["acf adaptive", "fixed 1.5 s + supersede", "fixed 1.5 s", "fixed 1.2 s", "naive"]
    assert set(rows) >= set(names)
    assert rows["naive"][1] == "100.0"  # replies per 100 messages: one per message
    assert "talked over while typing" in " ".join(done.stdout.split())
    assert "16 messages, 12 same-sender runs" in " ".join(done.stdout.split())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads(out.read_text())
    settings = document["settings"]
    assert settings["log"] == str(log) and settings["split"] == "all"
    assert settings["split_seed"] == SPLIT_SEED and settings["latency_ms"] == 1000
    assert settings["typing_model"]["cps"] == 8 and settings["channel"] == "whatsapp"
    assert settings["llm"] is None and settings["channel_policy"]["mode"] == "adaptive"
    assert settings["format"] == "csv"
    assert (settings["talk_margin_ms"], settings["gap_ms"]) == (2000, 600_000)
    replayed = {s["name"]: s for s in settings["strategies"]}
    assert list(replayed) == names
    assert replayed["acf adaptive"]["policy"] == settings["channel_policy"]
    assert (replayed["acf adaptive"]["supersede"], replayed["acf adaptive"]["typing"]) == (
        "supersede",
        True,
    )
    assert replayed["fixed 1.5 s"]["policy"]["mode"] == "fixed"
    assert replayed["fixed 1.5 s"]["policy"]["window_ms"] == 1500
    assert (replayed["fixed 1.5 s"]["supersede"], replayed["fixed 1.5 s"]["typing"]) == (
        "queue",
        False,
    )
    assert replayed["fixed 1.5 s + supersede"]["supersede"] == "supersede"
    assert replayed["naive"]["policy"]["mode"] == "off"
    measures = {m["strategy"]: m for m in document["strategies"]}
    assert list(measures) == names
    assert all(m["unanswered_runs"] == 0 == m["unanswered_per_100"] for m in measures.values())
    assert "unanswered runs" in " ".join(done.stdout.split())
    naive = measures["naive"]
    assert (naive["messages"], naive["runs"], naive["replies"]) == (16, 12, 16)
    assert naive["replies_per_100"] == 100.0 and naive["tokens"] is None
    assert naive["superseded_runs"] == 0 and naive["wasted_ms"] == 0
    for m in measures.values():  # every strategy is measured against the typing stretches
        assert m["talked_over_typing"] is not None
        assert m["wait_p50_ms"] <= m["wait_p95_ms"] <= m["wait_p99_ms"]
    # "I want to change" + "my delivery address" 0.8 s later: naive answers both, a window
    # one reply for the two
    assert measures["fixed 1.5 s"]["replies"] == 12


def test_replay_plays_one_half_of_the_conversations(tmp_path: Path) -> None:
    log = sample(tmp_path)
    lines = read(log, None)
    counts = {}
    for half in ("fit", "test"):
        out = tmp_path / f"{half}.json"
        done = replay(str(log), "--latency-ms", "0", "--split", half, "--json", str(out))
        assert done.returncode == 0, done.stderr
        document = json.loads(out.read_text())
        assert document["settings"]["split"] == half
        counts[half] = document["strategies"][0]["messages"]
        assert counts[half] == len(split(lines, half, SPLIT_SEED))
        assert f"({half} half, seed {SPLIT_SEED})" in " ".join(done.stdout.split())
    assert counts["fit"] + counts["test"] == 16 and counts["fit"] == 12  # conversations 0, 1, 2


def test_replay_refuses_bad_options_clearly(tmp_path: Path) -> None:
    log = sample(tmp_path)
    done = replay(str(log), "--split", "half")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --split must be one of all, fit, test, not 'half'"
    done = replay(str(log), "--channel", "pigeon")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown channel 'pigeon'"


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


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"sender,timestamp,text\nann,1546336800,caf\xe9\n", "{log}:line 2: not UTF-8"),
        (b"sender,timestamp,text\nann,soon,hi\n", "{log}:line 2: timestamp: not an ISO"),
        (b"sender,timestamp,text\n,1546336800,hi\n", "{log}:line 2: missing sender"),
    ],
)
def test_a_bad_log_exits_2_naming_file_and_line(tmp_path: Path, body: bytes, error: str) -> None:
    log = tmp_path / "log.csv"
    log.write_bytes(body)
    done = replay(str(log))
    assert done.returncode == 2, done.stderr  # not a traceback
    assert done.stderr.startswith("error: " + error.format(log=log))


def test_a_bad_format_or_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = replay(str(tmp_path / "missing.csv"))
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"error: {tmp_path / 'missing.csv'}: no such file",
    )
    log = sample(tmp_path)
    done = replay(str(log), "--format", "xml")
    assert done.returncode == 2 and "unknown format 'xml'" in done.stderr
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text('{"sender": "a", "timestamp": 1, "text": "x"}\n[1]\n')
    done = replay(str(jsonl))
    assert done.returncode == 2 and f"{jsonl}:line 2: expected an object" in done.stderr
    xml = tmp_path / "log.xml"
    xml.write_text("<slack><message><ts>1.5</ts><text>x</text></message></slack>")
    done = replay(str(xml))
    assert done.returncode == 2 and f"{xml}: <message> 1: missing <user>" in done.stderr


def test_an_unwritable_output_is_refused_before_the_replay(tmp_path: Path) -> None:
    log = sample(tmp_path)
    for option, target, why in [
        ("--json", log / "out.json", f"{log} is not a directory"),
        ("--plot", log / "plots" / "out.png", f"{log} is not a directory"),
        ("--json", tmp_path, "it is a directory"),
    ]:
        done = replay(str(log), option, str(target))
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"error: {option}: cannot write {target}: {why}"
        assert done.stdout == ""  # refused before replaying: no table
    if Path("/proc/self").is_dir():
        done = replay(str(log), "--json", "/proc/acf-replay.json")
        assert done.returncode == 2 and "cannot write /proc/acf-replay.json" in done.stderr


def test_a_failed_write_after_the_replay_exits_1_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_json", full_disk)
    out = tmp_path / "out.json"
    log = sample(tmp_path)
    done = CliRunner().invoke(
        app, ["replay", str(log), "--conversations", "1", "--latency-ms", "0", "--json", str(out)]
    )
    assert done.exit_code == 1, done.output
    assert f"error: cannot write {out}: [Errno 28] No space left on device" in done.output


def test_replay_counts_tokens_when_the_pipeline_is_a_streaming_llm(tmp_path: Path) -> None:
    out = tmp_path / "tokens.json"
    done = replay(str(sample(tmp_path)), "--llm-tokens-per-s", "30", "--json", str(out))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "LLM 300 ms to first token, 30 tokens/s, 60-token answers (2300 ms)" in text
    assert "tokens paid (LLM stand-in)" in text
    naive = rows_of(done.stdout)["naive"]
    # the token table's row: 16 requests of 1000 prompt tokens plus their text and 60 answer
    # tokens each, per 100 messages; nothing cancelled, nothing saved
    assert int(naive[1].replace(",", "")) > 1000 + 60
    assert naive[2:] == ["0", "-", "0.0"]
    document = json.loads(out.read_text())
    assert document["settings"]["latency_ms"] == 2300
    assert document["settings"]["llm"]["tokens_per_s"] == 30
    tokens = {m["strategy"]: m["tokens"] for m in document["strategies"]}
    assert tokens["naive"]["requests"] == 16 and tokens["naive"]["saved"] == 0
    assert all(t["paid"] == t["prompt"] + t["completion"] for t in tokens.values())
