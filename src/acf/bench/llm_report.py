"""The LLM benchmark's figures: each sample's times placed beside the fake model's record of
its request, the percentiles per subject, acf's added latency (acf - the SDK, p50 and p99)
with the ratios, the targets, the table and the JSON.
"""

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from acf.bench.llm_subjects import Sample
from acf.bench.report import machine
from acf.stats import percentile

ADDED_P50_TARGET_MS = 5.0
"""The issue's target: acf adds at most this to the first draft and to the reply (p50)."""
DRAFT_TARGET_MS = 100.0
"""DESIGN §16 / issue 19: the first draft shows within the model's TTFT + 100 ms (p50)."""

BASELINE_FIGURES = {
    "to model request": "the call → the request reaches the model",
    "to first token": "the call → the first content chunk is read",
    "to end": "the call → the stream's end is read",
    "after model": "the model's last byte → the stream's end is read",
}
ACF_FIGURES = {
    "to 202": "the POST → its 202 is read",
    "to model request": "the POST → acf's request reaches the model",
    "to first draft": "the POST → the first reply.draft is read",
    "to committed": "the POST → turn.committed is read",
    "to delivered": "the POST → response.delivered is read",
    "after model": "the model's last byte → response.delivered is read",
}
TIMELINE_FIGURES = {
    "to turn.started": "the POST → turn.started (its at_ms)",
    "turn.started to model request": "turn.started (its at_ms) → the request reaches the model",
    "model to turn.committed": "the model's last byte → turn.committed (its at_ms)",
    "turn.committed to response.delivered": "turn.committed → response.delivered (at_ms)",
    "response.delivered to read": "response.delivered (its at_ms) → it is read",
}
"""acf's own timeline of an acf sample, from its events' ``at_ms`` (its wall clock, whole
ms; placed on the samples' clock by the wall-clock reading taken with each POST)."""
ADDED = {
    "first draft": ("to first draft", "to first token"),
    "delivered reply": ("to delivered", "to end"),
    "before the model": ("to model request", "to model request"),
    "after the model": ("after model", "after model"),
}
"""acf's added latency: (acf figure, SDK figure)."""


@dataclass(frozen=True, slots=True)
class ModelSide:
    """What the fake model recorded of the requests carrying one sample's tag."""

    requests: int
    arrived: float
    """``time.monotonic()`` when the first of them arrived."""
    ended: float | None
    """When the last of them ended."""


@dataclass(frozen=True, slots=True)
class Spread:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return Spread(
        len(values),
        percentile(values, 50),
        percentile(values, 99),
        sum(values) / len(values),
        min(values),
        max(values),
    )


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000


def _stamp(s: Sample, kind: str) -> float | None:
    """An event's ``at_ms`` on the samples' clock (``time.monotonic()``)."""
    at_ms = s.stamps.get(kind)
    return None if at_ms is None else s.sent + (at_ms / 1000 - s.sent_wall)


def sample_figures(s: Sample, model: ModelSide | None, acf: bool) -> dict[str, float]:
    """One sample's figures in ms (only those it reached)."""
    arrived = None if model is None else model.arrived
    ended = None if model is None else model.ended
    started, committed, delivered = (
        _stamp(s, k) for k in ("turn.started", "turn.committed", "response.delivered")
    )
    found = {
        "to model request": _ms(s.sent, arrived),
        "to first token": None if acf else _ms(s.sent, s.first),
        "to end": None if acf else _ms(s.sent, s.done),
        "after model": _ms(ended, s.done),
        "to 202": _ms(s.sent, s.acked) if acf else None,
        "to first draft": _ms(s.sent, s.first) if acf else None,
        "to committed": _ms(s.sent, s.committed) if acf else None,
        "to delivered": _ms(s.sent, s.done) if acf else None,
        "to turn.started": _ms(s.sent, started),
        "turn.started to model request": _ms(started, arrived),
        "model to turn.committed": _ms(ended, committed),
        "turn.committed to response.delivered": _ms(committed, delivered),
        "response.delivered to read": _ms(delivered, s.done),
    }
    return {name: value for name, value in found.items() if value is not None}


@dataclass(slots=True)
class Evidence:
    """What the run did besides the figures; a run with problems is reported incorrect."""

    failed: list[str] = field(default_factory=list)
    """Samples that failed, and why (a failed or fallback turn, an error, a timeout)."""
    wrong_text: list[str] = field(default_factory=list)
    """Samples whose answer (streamed by the SDK, delivered by acf) is not the model's."""
    late_first_draft: int = 0
    """acf samples whose first draft read was not the answer's first token (the stream
    subscribed after it was published); their first-draft figure is left out."""
    model_requests_per_acf_sample: dict[int, int] = field(default_factory=dict)
    """How many acf samples made 1, 2 … requests to the model (all 1 in a clean run)."""
    log_problems: list[str] = field(default_factory=list)
    logs: str = ""

    @property
    def correct(self) -> bool:
        extra = any(n != 1 for n in self.model_requests_per_acf_sample)
        return not (self.failed or self.wrong_text or extra)


@dataclass(slots=True)
class LlmRun:
    settings: dict[str, Any]
    baseline: dict[str, list[float]]
    acf: dict[str, list[float]]
    draft_lag_ms: list[float]
    """Wall-clock ms from each draft's publication to its reading (ms resolution)."""
    evidence: Evidence
    load: tuple[float, float] = (0.0, 0.0)

    def spreads(self) -> dict[str, dict[str, Spread]]:
        return {
            "openai SDK": {k: spread(self.baseline.get(k, [])) for k in BASELINE_FIGURES},
            "acf": {k: spread(self.acf.get(k, [])) for k in (*ACF_FIGURES, *TIMELINE_FIGURES)},
        }

    def added(self) -> dict[str, dict[str, float]]:
        """Per comparison: acf's p50 and p99 minus the SDK's (ms), and their ratios."""
        s = self.spreads()
        out: dict[str, dict[str, float]] = {}
        for name, (mine, theirs) in ADDED.items():
            a, b = s["acf"][mine], s["openai SDK"][theirs]
            out[name] = {
                "p50_ms": a.p50_ms - b.p50_ms,
                "p99_ms": a.p99_ms - b.p99_ms,
                "ratio_p50": a.p50_ms / b.p50_ms if b.p50_ms else float("nan"),
                "ratio_p99": a.p99_ms / b.p99_ms if b.p99_ms else float("nan"),
            }
        return out

    def verdicts(self) -> dict[str, bool]:
        added = self.added()
        first_token = self.spreads()["openai SDK"]["to first token"].p50_ms
        first_draft = self.spreads()["acf"]["to first draft"].p50_ms
        return {
            f"added to the first draft p50 <= {ADDED_P50_TARGET_MS:g} ms": (
                added["first draft"]["p50_ms"] <= ADDED_P50_TARGET_MS
            ),
            f"added to the delivered reply p50 <= {ADDED_P50_TARGET_MS:g} ms": (
                added["delivered reply"]["p50_ms"] <= ADDED_P50_TARGET_MS
            ),
            f"first draft p50 <= the model's first token p50 + {DRAFT_TARGET_MS:g} ms": (
                first_draft <= first_token + DRAFT_TARGET_MS
            ),
            "every sample answered, once, with the model's text": self.evidence.correct,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": {**machine(), "load_average_1m_at_start_and_end": self.load},
            "settings": self.settings,
            "figures_ms": {
                subject: {name: asdict(v) for name, v in figures.items()}
                for subject, figures in self.spreads().items()
            },
            "added_ms": self.added(),
            "draft_published_to_read_ms": asdict(spread(self.draft_lag_ms)),
            "targets": self.verdicts(),
            "evidence": asdict(self.evidence),
            "samples_ms": {
                "openai SDK": {k: [round(v, 3) for v in vs] for k, vs in self.baseline.items()},
                "acf": {k: [round(v, 3) for v in vs] for k, vs in self.acf.items()},
            },
        }


def print_run(run: LlmRun) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    s = run.spreads()
    st = run.settings
    out = Table(
        title=f"acf bench llm: fake model {st['ttft_ms']} ms to first token, "
        f"{st['tokens_per_s']:g} tokens/s, {st['answer_tokens']}-token answer; "
        f"{st['samples']} samples each, interleaved"
    )
    for column in ("subject", "figure", "p50", "p99", "mean", "max"):
        out.add_column(column, justify="left" if column in ("subject", "figure") else "right")
    for label, subject, names in (
        ("openai SDK", "openai SDK", BASELINE_FIGURES),
        ("acf", "acf", ACF_FIGURES),
        ("acf's events", "acf", TIMELINE_FIGURES),
    ):
        for name, what in names.items():
            v = s[subject][name]
            out.add_row(
                label,
                what,
                f"{v.p50_ms:.2f} ms",
                f"{v.p99_ms:.2f} ms",
                f"{v.mean_ms:.2f} ms",
                f"{v.max_ms:.2f} ms",
            )
    console.print(out)
    for name, a in run.added().items():
        console.print(
            f"acf added, {name}: p50 {a['p50_ms']:+.2f} ms (x{a['ratio_p50']:.3f}), "
            f"p99 {a['p99_ms']:+.2f} ms (x{a['ratio_p99']:.3f})"
        )
    lag = spread(run.draft_lag_ms)
    console.print(
        f"a draft from its publication in acf to its reading by the client (wall clock, ms "
        f"resolution): p50 {lag.p50_ms:.0f} ms, p99 {lag.p99_ms:.0f} ms over {lag.n} drafts"
    )
    for name, met in run.verdicts().items():
        console.print(f"target {name}: {'met' if met else 'MISSED'}")
    e = run.evidence
    console.print(
        f"failed samples: {len(e.failed)} {e.failed[:3]}; "
        f"wrong text: {len(e.wrong_text)} {e.wrong_text[:2]}; "
        f"late first draft: {e.late_first_draft}; model requests per acf sample: "
        f"{e.model_requests_per_acf_sample}; acf log problems: {e.log_problems[:3] or 'none'}"
    )
    console.print(f"acf's log: {e.logs}")
    console.print(
        "load average (1 min) at start / end: "
        f"{run.load[0]:.1f} / {run.load[1]:.1f} on {os.cpu_count()} CPUs"
    )
