"""A sweep of acf's channel policy over a chat log: which settings meet issue 23's targets.

``python -m acf.replay.sweep LOG --grid benchmarks/replay-grid.yaml --half fit --json OUT``
replays the baselines (the default strategies of ``acf replay`` other than acf adaptive) once,
and the acf strategy once per policy variant: the channel's default policy, and each point
of the grid (``acf.replay.grid``). Each replay is one job in a pool of ``--jobs``
worker processes. Rules are fitted on the ``fit`` half of the log and reported on ``test``
(``acf.replay.split``).

The table has one row per strategy: its parameters, the measures per 100 messages, the added
wait, whether it is on the Pareto front of talked-over replies against the wait's p95 (the
talked-over during typing when typing is synthesised: what the typing hold is for), and
which targets it meets; ``--json`` writes all of it, with every measure and each job's time.
The ``--json`` path is checked before the replays start.
"""

import argparse
import asyncio
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from enum import Enum
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from acf.domain.channels import Channel
from acf.logging import configure_logging
from acf.replay.grid import ACF, Params, load_grid, variants
from acf.replay.outputs import unwritable
from acf.replay.report import measuring_settings
from acf.replay.runs import Measure
from acf.replay.simulate import Strategy, default_strategies, simulate
from acf.replay.sources import ChatLine, detect, read
from acf.replay.split import HALVES, SPLIT_SEED, first_conversations, split
from acf.replay.typing_model import TypingModel

FIXED = "fixed 1.5 s"
FIXED_SUPERSEDE = "fixed 1.5 s + supersede"
NAIVE = "naive"
TYPING_WAIT_P95_MS = 3000


@dataclass(frozen=True, slots=True)
class Figures:
    """A strategy's measures per 100 messages, and its added wait."""

    replies: float
    talked_over: float
    talked_over_typing: float | None
    wait_p50_ms: float
    wait_p95_ms: float
    wait_p99_ms: float
    superseded_runs: float
    wasted_s: float
    unanswered_runs: float = 0.0


def figures(m: Measure) -> Figures:
    return Figures(
        replies=m.replies_per_100,
        talked_over=m.talked_over_per_100,
        talked_over_typing=m.talked_over_typing_per_100,
        wait_p50_ms=m.wait_p50_ms,
        wait_p95_ms=m.wait_p95_ms,
        wait_p99_ms=m.wait_p99_ms,
        superseded_runs=m.superseded_per_100,
        wasted_s=m.wasted_s_per_100,
        unanswered_runs=m.unanswered_per_100,
    )


def talked_over(f: Figures, typing: bool) -> float:
    """The talked-over measure a sweep judges: during typing when typing is synthesised."""
    if typing:
        return f.talked_over_typing if f.talked_over_typing is not None else float("inf")
    return f.talked_over


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each point, whether no other point is at least as low on both and lower on one."""
    return [not any(o[0] <= p[0] and o[1] <= p[1] and o != p for o in points) for p in points]


def targets(f: Figures, baselines: Mapping[str, Figures], typing: bool) -> list[tuple[str, bool]]:
    """Issue 23's targets for a strategy, each with whether ``f`` meets it. Without typing
    against the fixed 1.5 s window (with and without supersede); with typing against naive
    and an absolute wait. Either way no more runs left unanswered than naive's (the wait
    leaves them out: dropping replies must not pass for speed). ``baselines`` must hold the
    strategies named."""
    answered = (
        "unanswered runs <= naive's",
        f.unanswered_runs <= baselines[NAIVE].unanswered_runs,
    )
    if typing:
        naive = baselines[NAIVE].talked_over_typing
        mine = f.talked_over_typing
        return [
            (
                "talked-over during typing <= 50 % of naive's",
                mine is not None and naive is not None and mine <= naive / 2,
            ),
            ("wait p95 <= 3 s", f.wait_p95_ms <= TYPING_WAIT_P95_MS),
            answered,
        ]
    fixed, fixed_supersede = baselines[FIXED], baselines[FIXED_SUPERSEDE]
    return [
        ("talked-over <= 50 % of fixed 1.5 s's", f.talked_over <= fixed.talked_over / 2),
        ("talked-over < fixed 1.5 s + supersede's", f.talked_over < fixed_supersede.talked_over),
        ("wait p95 <= fixed 1.5 s's", f.wait_p95_ms <= fixed.wait_p95_ms),
        ("replies <= fixed 1.5 s's", f.replies <= fixed.replies),
        answered,
    ]


# -- replaying, in worker processes -------------------------------------------------------

_context: tuple[list[ChatLine], int, Channel, TypingModel | None] | None = None


def _start_worker(
    lines: list[ChatLine], latency_ms: int, channel: Channel, typing: TypingModel | None
) -> None:
    global _context
    _context = (lines, latency_ms, channel, typing)


def _replay(strategy: Strategy) -> tuple[Measure, float]:
    """One job: the log replayed with one strategy, and how long that took (s)."""
    if _context is None:
        raise RuntimeError("a worker replays once _start_worker gave it the log")
    configure_logging("CRITICAL")
    lines, latency_ms, channel, typing = _context
    started = time.perf_counter()
    measure = asyncio.run(simulate(lines, strategy, latency_ms, channel, typing=typing))
    return measure, time.perf_counter() - started


def replay_all(
    lines: list[ChatLine],
    strategies: Sequence[Strategy],
    latency_ms: int,
    channel: Channel,
    typing: TypingModel | None,
    jobs: int,
    done: Callable[[Strategy, float], None] = lambda s, t: None,
) -> list[tuple[Measure, float]]:
    """Each strategy's measure and time, in the order given; ``jobs`` processes at most
    (1: in this process)."""
    context = (lines, latency_ms, channel, typing)
    if jobs == 1:
        _start_worker(*context)
        results = []
        for strategy in strategies:
            results.append(_replay(strategy))
            done(strategy, results[-1][1])
        return results
    out: dict[int, tuple[Measure, float]] = {}
    with ProcessPoolExecutor(
        jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=context
    ) as pool:
        futures = {pool.submit(_replay, s): n for n, s in enumerate(strategies)}
        for future in as_completed(futures):
            n = futures[future]
            out[n] = future.result()
            done(strategies[n], out[n][1])
    return [out[n] for n in range(len(strategies))]


# -- the command --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    strategy: Strategy
    params: Params | None
    """The grid's values of a variant; None for a baseline."""
    measure: Measure
    seconds: float
    pareto: bool
    targets: list[tuple[str, bool]] | None
    """None for a baseline."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.strategy.name,
            "kind": "baseline" if self.params is None else "variant",
            "params": dict(self.params or ()),
            "policy": dataclasses.asdict(self.strategy.policy),
            "supersede": self.strategy.supersede.value,
            "per_100": dataclasses.asdict(figures(self.measure)),
            "measure": dataclasses.asdict(self.measure),
            "seconds": round(self.seconds, 1),
            "pareto": self.pareto,
            "targets": None if self.targets is None else dict(self.targets),
            "meets_targets": None if self.targets is None else all(m for _, m in self.targets),
        }


def rows_of(
    strategies: Sequence[Strategy],
    variant_params: Mapping[str, Params],
    results: Sequence[tuple[Measure, float]],
    typing: bool,
) -> list[Row]:
    """The table's rows: fronts and targets worked out from the measures."""
    figs = [figures(m) for m, _ in results]
    front = pareto_front([(talked_over(f, typing), f.wait_p95_ms) for f in figs])
    baselines = {s.name: f for s, f in zip(strategies, figs, strict=True)}
    rows = []
    for n, strategy in enumerate(strategies):
        params = variant_params.get(strategy.name)
        checks = None if params is None else targets(figs[n], baselines, typing)
        rows.append(Row(strategy, params, *results[n], front[n], checks))
    return rows


def table(rows: Sequence[Row], fields: Sequence[str], typing: bool, title: str) -> Table:
    out = Table(title=title)
    columns = ["strategy", *(x.removesuffix("_ms") for x in fields), "replies", "talked-over"]
    columns += ["talked-over typing"] if typing else []
    columns += ["wait p50", "wait p95", "wait p99", "unanswered", "superseded", "wasted s"]
    columns += ["front", "targets"]
    for column in columns:
        out.add_column(column, justify="left" if column == "strategy" else "right")
    for row in rows:
        f = figures(row.measure)
        cells = [row.strategy.name]
        cells += [
            json.dumps(getattr(row.strategy.policy, x)) if row.params is not None else ""
            for x in fields
        ]
        cells += [f"{f.replies:.1f}", f"{f.talked_over:.2f}"]
        if typing:
            cells.append("-" if f.talked_over_typing is None else f"{f.talked_over_typing:.2f}")
        cells += [f"{ms / 1000:.2f} s" for ms in (f.wait_p50_ms, f.wait_p95_ms, f.wait_p99_ms)]
        cells += [str(row.measure.unanswered_runs), f"{f.superseded_runs:.2f}"]
        cells += [f"{f.wasted_s:.1f}", "*" if row.pareto else ""]
        cells += ["".join("✓" if met else "✗" for _, met in row.targets or ())]
        out.add_row(*cells)
    checks = next((row.targets for row in rows if row.targets), [])
    out.caption = (
        "per 100 messages (unanswered: runs, counted); * Pareto front; targets: "
        + "; ".join(n for n, _ in checks)
    )
    return out


def _json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON: {value!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m acf.replay.sweep", description=__doc__)
    parser.add_argument("log", type=Path, help="a timed chat log (Slack XML, CSV or JSONL)")
    parser.add_argument("--format", dest="fmt", help="slack, csv or jsonl (default: the name's)")
    parser.add_argument("--half", choices=HALVES, default="fit", help="the log's half (fit)")
    parser.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    parser.add_argument("--conversations", type=int, help="only the half's first N")
    parser.add_argument("--latency-ms", type=int, default=1500, help="the pipeline's time")
    parser.add_argument("--typing-cps", type=float, default=0.0, help="typing speed (0: none)")
    parser.add_argument("--channel", default="whatsapp", help="whose default policy is varied")
    parser.add_argument("--grid", type=Path, help="a grid YAML file (default: no variants)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.latency_ms < 0 or args.typing_cps < 0:
        parser.error("--jobs must be positive, --latency-ms and --typing-cps not negative")
    if args.conversations is not None and args.conversations < 1:
        parser.error("--conversations must be at least 1")
    if args.json is not None and (why := unwritable(args.json)) is not None:
        parser.error(f"--json: cannot write {args.json}: {why}")
    err = Console(stderr=True)
    try:
        channel = Channel(args.channel)
        grids = load_grid(args.grid) if args.grid else []
        lines = split(read(args.log, args.fmt), args.half, args.split_seed)
        log_format = args.fmt or detect(args.log)
    except (ValueError, OSError) as exc:  # an unknown channel, SourceError, GridError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.conversations is not None:
        lines = first_conversations(lines, args.conversations)
    if not lines:
        print(f"error: {args.log} holds no message in that half", file=sys.stderr)
        return 2
    typing = TypingModel(cps=args.typing_cps) if args.typing_cps > 0 else None
    defaults = default_strategies(channel, typing is not None)
    acf = next(s for s in defaults if s.name == ACF)
    found, skipped = variants(acf.policy, grids)
    strategies = [s for s in defaults if s.name != ACF]
    strategies += [dataclasses.replace(acf, name=v.name, policy=v.policy) for v in found]
    err.print(f"{len(lines)} messages; {len(strategies)} replays in {args.jobs} processes")
    for params, why in skipped:
        err.print(f"skipped {dict(params)}: {why}", markup=False)
    count = itertools.count(1)
    results = replay_all(
        lines,
        strategies,
        args.latency_ms,
        channel,
        typing,
        args.jobs,
        lambda s, t: err.print(f"[{next(count)}/{len(strategies)}] {s.name}: {t:.0f} s"),
    )
    rows = rows_of(strategies, {v.name: v.params for v in found}, results, typing is not None)
    first = results[0][0]
    title = (
        f"{args.log.name} ({args.half} half): {first.messages} messages, {first.runs} runs; "
        f"pipeline {args.latency_ms} ms; typing "
        f"{f'{args.typing_cps:g} cps' if typing else 'off'}; {channel.value} policy"
    )
    fields = list(dict.fromkeys(f for grid in grids for f in grid))
    wide = None if sys.stdout.isatty() else 250  # a file or a pipe: keep rows on one line
    Console(width=wide).print(table(rows, fields, typing is not None, title))
    if args.json is not None:
        report = {
            "log": str(args.log),
            "format": log_format,
            "half": args.half,
            "split_seed": args.split_seed,
            "conversations": args.conversations,
            "latency_ms": args.latency_ms,
            "channel": channel.value,
            "typing": None if typing is None else dataclasses.asdict(typing),
            **measuring_settings(),
            "grid": grids,
            "skipped": [{"params": dict(p), "reason": why} for p, why in skipped],
            "rows": [row.to_json() for row in rows],
        }
        try:
            write_report(args.json, report)
        except OSError as exc:  # what changed since the check: a full disk, say
            print(f"error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 1
        err.print(f"results written to {args.json}")
    return 0


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_json) + "\n")


if __name__ == "__main__":
    sys.exit(main())
