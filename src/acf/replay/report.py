"""The replay's output: a table of strategies side by side, and optionally a plot."""

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from acf.replay.runs import Measure

TOKEN_COLUMNS = ("tokens / 100 msgs", "cancelled gens", "cancelled: used / full answer")


def table(measures: Sequence[Measure], title: str) -> Table:
    out = Table(title=title)
    metered = any(m.tokens is not None for m in measures)
    columns = [
        "strategy",
        "replies",
        "replies / run",
        "runs answered once",
        "added wait p50",
        "added wait p95",
    ]
    for column in [*columns, *(TOKEN_COLUMNS if metered else ())]:
        out.add_column(column, justify="left" if column == "strategy" else "right")
    for m in measures:
        row = [
            m.strategy,
            str(m.replies),
            f"{m.replies_per_run:.3f}",
            f"{m.answered_once:.1%}",
            f"{m.wait_p50_ms / 1000:.2f} s",
            f"{m.wait_p95_ms / 1000:.2f} s",
        ]
        if metered:
            row += token_cells(m)
        out.add_row(*row)
    return out


def token_cells(m: Measure) -> list[str]:
    """Tokens paid per 100 messages; cancelled generations and the share of their full
    answers they streamed before their stream was closed."""
    t = m.tokens
    if t is None:
        return ["", "", ""]
    per_100 = 100 * t.paid / (m.messages or 1)
    share = (
        f"{t.cancelled_used} / {t.cancelled_would_use} "
        f"({t.cancelled_used / t.cancelled_would_use:.0%})"
        if t.cancelled_would_use
        else "-"
    )
    return [f"{per_100:,.0f}", str(t.cancelled), share]


def plot(measures: Sequence[Measure], title: str, path: Path) -> None:
    """Three panels: replies per run, share answered once, added wait (p50 and p95)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(
            "--plot needs matplotlib: pip install 'acf[plot]' (make install has it)"
        ) from None
    names = [m.strategy for m in measures]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    axes[0].bar(names, [m.replies_per_run for m in measures], color="#4c72b0")
    axes[0].set_title("replies per same-sender run (ideal 1)")
    axes[1].bar(names, [100 * m.answered_once for m in measures], color="#55a868")
    axes[1].set_title("runs answered once (%)")
    width = 0.4
    xs = range(len(names))
    axes[2].bar(
        [x - width / 2 for x in xs],
        [m.wait_p50_ms / 1000 for m in measures],
        width,
        label="p50",
        color="#c44e52",
    )
    axes[2].bar(
        [x + width / 2 for x in xs],
        [m.wait_p95_ms / 1000 for m in measures],
        width,
        label="p95",
        color="#8172b2",
    )
    axes[2].set_xticks(list(xs), names)
    axes[2].set_title("wait added after a run's last message (s)")
    axes[2].legend()
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
