"""The LLM benchmark end to end, tiny and fast (a real ``acf serve`` with a ``kind: llm``
agent, the real fake model on loopback, a quick model instead of 300 ms and 30 tokens/s):
it runs, every sample is answered once with the model's text, and its report holds the
figures. The whole run is `make bench-llm`; figures in docs/benchmarks.md.

Timings are not asserted: machines are shared and noisy.
"""

import json
from pathlib import Path

import pytest

from acf.bench.llm import ANSWER, ANSWER_TOKENS, config_text, main
from acf.bench.llm_report import (
    ACF_FIGURES,
    ADDED,
    BASELINE_FIGURES,
    TIMELINE_FIGURES,
    Evidence,
    LlmRun,
    ModelSide,
    sample_figures,
)
from acf.bench.llm_subjects import Sample
from acf.config.load import load_config


def test_the_configuration_is_a_valid_llm_agent_without_a_window(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(config_text("http://127.0.0.1:9/v1"), encoding="utf-8")
    text = path.read_text()
    assert "kind: llm" in text and "web: {mode: off}" in text
    assert "${ACF_BENCH_LLM_API_KEY}" in text  # a secret reference, never a literal
    load_config(path)


def test_the_answer_is_thirty_tokens() -> None:
    assert ANSWER_TOKENS == 30
    assert ANSWER.endswith(".")


def test_a_sample_is_split_at_the_model() -> None:
    sdk = Sample("sdk-0", sent=10.0, first=10.31, done=11.3)
    acf = Sample("acf-0", sent=20.0, acked=20.01, first=20.32, committed=21.30, done=21.32)
    acf.sent_wall = 1000.0  # acf's stamps are wall-clock ms
    acf.stamps = {"turn.started": 1_000_012, "turn.committed": 1_001_295}
    sdk_figures = sample_figures(sdk, ModelSide(1, arrived=10.005, ended=11.299), acf=False)
    acf_figures = sample_figures(acf, ModelSide(1, arrived=20.02, ended=21.29), acf=True)
    assert set(sdk_figures) == set(BASELINE_FIGURES)
    assert set(acf_figures) == set(ACF_FIGURES) | {
        "to turn.started",
        "turn.started to model request",
        "model to turn.committed",
    }  # response.delivered was not stamped
    assert acf_figures["to turn.started"] == pytest.approx(12.0)
    assert acf_figures["model to turn.committed"] == pytest.approx(5.0)
    assert sdk_figures["to first token"] == pytest.approx(310.0)
    assert acf_figures["after model"] == pytest.approx(30.0)
    run = LlmRun(
        {},
        {k: [v] for k, v in sdk_figures.items()},
        {k: [v] for k, v in acf_figures.items()},
        [],
        Evidence(model_requests_per_acf_sample={1: 1}),
    )
    added = run.added()
    assert set(added) == set(ADDED)
    assert added["first draft"]["p50_ms"] == pytest.approx(10.0)
    assert added["delivered reply"]["p50_ms"] == pytest.approx(20.0)
    assert added["before the model"]["p50_ms"] == pytest.approx(15.0)
    assert run.verdicts()["every sample answered, once, with the model's text"]


def test_a_second_model_request_makes_the_run_incorrect() -> None:
    assert not Evidence(model_requests_per_acf_sample={1: 3, 2: 1}).correct
    assert not Evidence(failed=["acf-1: turn.failed"]).correct


def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "llm.json"
    argv = ["--samples", "3", "--warmup", "1", "--ttft-ms", "20", "--tokens-per-s", "400"]
    code = main([*argv, "--pause-ms", "0", "--logs", str(tmp_path / "logs"), "--json", str(out)])
    report = json.loads(out.read_text())
    evidence = report["evidence"]
    assert evidence["failed"] == [] and evidence["wrong_text"] == []
    assert evidence["model_requests_per_acf_sample"] == {"1": 3}  # no retry, no summary call
    assert evidence["log_problems"] == []
    assert code == 0
    figures = report["figures_ms"]
    assert set(figures["openai SDK"]) == set(BASELINE_FIGURES)
    late = evidence["late_first_draft"]
    assert figures["acf"]["to first draft"]["n"] == 3 - late
    assert set(figures["acf"]) == set(ACF_FIGURES) | set(TIMELINE_FIGURES)
    for name in [*ACF_FIGURES, *TIMELINE_FIGURES]:
        if name != "to first draft":
            assert figures["acf"][name]["n"] == 3, name
    for name in BASELINE_FIGURES:
        assert figures["openai SDK"][name]["n"] == 3, name
    assert set(report["added_ms"]) == set(ADDED)
    for added in report["added_ms"].values():
        assert set(added) == {"p50_ms", "p99_ms", "ratio_p50", "ratio_p99"}
    assert report["draft_published_to_read_ms"]["n"] >= 3
    assert len(report["targets"]) == 4
    assert report["settings"]["answer_tokens"] == ANSWER_TOKENS
    assert len(report["samples_ms"]["acf"]["to delivered"]) == 3
