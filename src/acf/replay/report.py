"""The replay's output: a table of strategies side by side, and optionally a plot."""

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from acf.replay.runs import Measure


def table(measures: Sequence[Measure], title: str) -> Table:
    out = Table(title=title)
    for column in (
        "strategy",
        "replies",
        "replies / run",
        "runs answered once",
        "added wait p50",
        "added wait p95",
    ):
        out.add_column(column, justify="left" if column == "strategy" else "right")
    for m in measures:
        out.add_row(
            m.strategy,
            str(m.replies),
            f"{m.replies_per_run:.3f}",
            f"{m.answered_once:.1%}",
            f"{m.wait_p50_ms / 1000:.2f} s",
            f"{m.wait_p95_ms / 1000:.2f} s",
        )
    return out


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
