"""The replay's output: tables of strategies side by side, JSON, and optionally a plot.

The main table leads with what a customer notices, per 100 messages: replies, replies that
talked over them, and the wait a strategy added (p50 / p95 / p99) with the runs it left
unanswered (left out of the wait: dropping replies must not look fast); then what superseding
cost (pipeline runs thrown away, their seconds); then the per-run figures, which mostly
describe the log. With a metered LLM a second table says what each strategy paid in tokens.
"""

import dataclasses
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from rich.table import Table

from acf.replay.runs import Measure
from acf.replay.simulate import GAP_MS, Strategy
from acf.replay.talk import TALK_MARGIN_MS

TOKEN_COLUMNS = (
    "tokens /100",
    "cancelled gens",
    "cancelled: used / full answer",
    "answer tokens saved /100",
)


CAPTION = (
    "/100: per 100 messages. talked over: a reply after the customer's next message or < 2 s "
    "before it; while typing: inside the typing of a later message. added wait: after a run's "
    "last message, beyond the pipeline's own time; unanswered runs: no reply covered their last "
    "message (left out of the wait). superseded: pipeline runs thrown away by a newer message; "
    "wasted s: their pipeline time."
)


def table(measures: Sequence[Measure], title: str) -> Table:
    """One row per strategy; the typing column only when a typing model was replayed."""
    typing = any(m.talked_over_typing is not None for m in measures)
    columns = [
        "strategy",
        "replies /100",
        "talked over /100",
        *(["talked over while typing /100"] if typing else []),
        "added wait p50 (s)",
        "p95 (s)",
        "p99 (s)",
        "unanswered runs",
        "superseded /100",
        "wasted s /100",
        "replies / run",
        "runs answered once",
    ]
    out = Table(title=title, caption=CAPTION)
    for column in columns:
        if column == "strategy":
            out.add_column(column, no_wrap=True)
        else:  # wrapped between words, never inside one
            out.add_column(column, justify="right", min_width=max(map(len, column.split())))
    for m in measures:
        during = m.talked_over_typing_per_100
        out.add_row(
            m.strategy,
            f"{m.replies_per_100:.1f}",
            f"{m.talked_over_per_100:.1f}",
            *([f"{during:.1f}" if during is not None else "-"] if typing else []),
            *(f"{ms / 1000:.2f}" for ms in (m.wait_p50_ms, m.wait_p95_ms, m.wait_p99_ms)),
            str(m.unanswered_runs),
            f"{m.superseded_per_100:.1f}",
            f"{m.wasted_s_per_100:.1f}",
            f"{m.replies_per_run:.3f}",
            f"{m.answered_once:.1%}",
        )
    return out


def token_table(measures: Sequence[Measure], title: str) -> Table | None:
    """What each strategy paid with a metered LLM; None when the pipeline was a pause."""
    if all(m.tokens is None for m in measures):
        return None
    out = Table(title=title)
    for column in ("strategy", *TOKEN_COLUMNS):
        out.add_column(column, justify="left" if column == "strategy" else "right")
    for m in measures:
        out.add_row(m.strategy, *token_cells(m))
    return out


def token_cells(m: Measure) -> list[str]:
    """Tokens paid per 100 messages; cancelled generations and the share of their full
    answers they streamed before their stream was closed; answer tokens saved."""
    t = m.tokens
    if t is None:
        return ["", "", "", ""]
    share = (
        f"{t.cancelled_used} / {t.cancelled_would_use} "
        f"({t.cancelled_used / t.cancelled_would_use:.0%})"
        if t.cancelled_would_use
        else "-"
    )
    return [f"{m.per_100(t.paid):,.0f}", str(t.cancelled), share, f"{m.per_100(t.saved):,.1f}"]


def talked_over_axis(m: Measure) -> float:
    """The Pareto panel's talked-over figure: during typing when typing was replayed."""
    during = m.talked_over_typing_per_100
    return m.talked_over_per_100 if during is None else during


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats (lower is better on both axes: at most
    as high on both and lower on one), by the first coordinate."""
    front = [
        i
        for i, (x, y) in enumerate(points)
        if not any(
            (ox <= x and oy <= y) and (ox < x or oy < y)
            for j, (ox, oy) in enumerate(points)
            if j != i
        )
    ]
    return sorted(front, key=lambda i: points[i])


def record(m: Measure) -> dict[str, Any]:
    """Every figure of one strategy, counts and per-100 rates, for ``--json``."""
    t = m.tokens
    return {
        "strategy": m.strategy,
        "messages": m.messages,
        "runs": m.runs,
        "replies": m.replies,
        "replies_per_100": m.replies_per_100,
        "talked_over": m.talked_over,
        "talked_over_per_100": m.talked_over_per_100,
        "talked_over_typing": m.talked_over_typing,
        "talked_over_typing_per_100": m.talked_over_typing_per_100,
        "superseded_runs": m.superseded_runs,
        "superseded_per_100": m.superseded_per_100,
        "wasted_ms": m.wasted_ms,
        "wasted_s_per_100": m.wasted_s_per_100,
        "wait_p50_ms": m.wait_p50_ms,
        "wait_p95_ms": m.wait_p95_ms,
        "wait_p99_ms": m.wait_p99_ms,
        "unanswered_runs": m.unanswered_runs,
        "unanswered_per_100": m.unanswered_per_100,
        "replies_per_run": m.replies_per_run,
        "answered_once": m.answered_once,
        "tokens": None
        if t is None
        else {
            "requests": t.requests,
            "prompt": t.prompt,
            "completion": t.completion,
            "paid": t.paid,
            "paid_per_100": m.per_100(t.paid),
            "cancelled": t.cancelled,
            "cancelled_used": t.cancelled_used,
            "cancelled_would_use": t.cancelled_would_use,
            "saved": t.saved,
            "saved_per_100": m.tokens_saved_per_100,
        },
    }


def strategy_settings(strategy: Strategy) -> dict[str, Any]:
    """What a strategy replayed: its channel policy, supersede decision and typing."""
    return {
        "name": strategy.name,
        "policy": jsonable(dataclasses.asdict(strategy.policy)),
        "supersede": strategy.supersede.value,
        "typing": strategy.typing,
    }


def measuring_settings() -> dict[str, int]:
    """The replay's own constants that shape its figures: the talked-over margin and the
    pause after which quiet time is shortened (``acf.replay.simulate.GAP_MS``)."""
    return {"talk_margin_ms": TALK_MARGIN_MS, "gap_ms": GAP_MS}


def jsonable(value: Any) -> Any:
    """Enums as their values, tuples as lists: what ``json`` can write."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def write_json(path: Path, measures: Sequence[Measure], settings: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"settings": dict(settings), "strategies": [record(m) for m in measures]}
    path.write_text(json.dumps(document, indent=2) + "\n")


def plot(measures: Sequence[Measure], title: str, path: Path) -> None:
    """Four panels: the Pareto panel (talked over per 100 messages against the added wait's
    p95), the added wait (p50, p95, p99), replies per run and the share answered once."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(
            "--plot needs matplotlib: pip install 'acf[plot]' (make install has it)"
        ) from None
    names = [m.strategy for m in measures]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (pareto, wait), (per_run, once) = axes
    _pareto_panel(pareto, measures)
    width = 0.27
    xs = range(len(names))
    for offset, label, colour, values in (
        (-width, "p50", "#c44e52", [m.wait_p50_ms for m in measures]),
        (0.0, "p95", "#8172b2", [m.wait_p95_ms for m in measures]),
        (width, "p99", "#937860", [m.wait_p99_ms for m in measures]),
    ):
        wait.bar(
            [x + offset for x in xs], [v / 1000 for v in values], width, label=label, color=colour
        )
    wait.set_xticks(list(xs), names)
    wait.set_title("wait added after a run's last message (s)")
    wait.legend()
    per_run.bar(names, [m.replies_per_run for m in measures], color="#4c72b0")
    per_run.set_title("replies per same-sender run (ideal 1; mostly the log's shape)")
    once.bar(names, [100 * m.answered_once for m in measures], color="#55a868")
    once.set_title("runs answered once (%)")
    for ax in (wait, per_run, once):
        ax.tick_params(axis="x", labelrotation=15)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pareto_panel(ax: Any, measures: Sequence[Measure]) -> None:
    """One point per strategy (strategies on the same point share its label), the front
    drawn as the staircase of the best talked-over figure at each wait."""
    typing = any(m.talked_over_typing is not None for m in measures)
    points = [(m.wait_p95_ms / 1000, talked_over_axis(m)) for m in measures]
    front = pareto_front(points)
    ax.plot(
        [points[i][0] for i in front],
        [points[i][1] for i in front],
        color="#999999",
        linestyle="--",
        drawstyle="steps-post",
        label="Pareto front",
    )
    labels: dict[tuple[float, float], list[str]] = {}
    for i, (m, point) in enumerate(zip(measures, points, strict=True)):
        ax.scatter(*point, color="#dd8452" if i in front else "#4c72b0", zorder=3)
        labels.setdefault((round(point[0], 2), round(point[1], 2)), []).append(m.strategy)
    for (x, y), strategies in labels.items():
        text = "\n".join(strategies)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.margins(0.25, 0.2)
    ax.set_xlabel("added wait p95 (s)")
    ax.set_ylabel(f"talked over {'while typing ' if typing else ''}per 100 messages")
    ax.set_title("talked over vs wait: lower left is better (orange: on the front)")
    ax.legend(loc="lower right", fontsize=8)
