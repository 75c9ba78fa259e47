"""``acf replay`` and ``acf bench``: measuring acf."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from acf.entrypoints.cli.common import app

WIDE = 180
"""The replay tables' width when they go to a file or a pipe."""

if TYPE_CHECKING:
    from acf.adapters.sqlite.database import Durability
    from acf.replay.sources import ChatLine


@app.command("replay")
def replay(
    path: Annotated[Path, typer.Argument(help="A timed chat log (Slack XML, CSV or JSONL).")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="slack, csv or jsonl (default: from the name).")
    ] = None,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, help="The pipeline's time per turn.")
    ] = 1500,
    typing_cps: Annotated[
        float,
        typer.Option(
            "--typing-cps",
            min=0,
            help="Synthesise typing at this many characters per second with the replay's "
            "typing model (0: none).",
        ),
    ] = 0.0,
    channel: Annotated[str, typer.Option("--channel", help="Whose adaptive policy acf uses.")] = (
        "whatsapp"
    ),
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="all, or one half of the conversations (shuffled by --split-seed): fit or test.",
        ),
    ] = "all",
    split_seed: Annotated[
        int | None,
        typer.Option("--split-seed", help="The seed of --split (default: the frozen one, 23)."),
    ] = None,
    conversations: Annotated[
        int | None,
        typer.Option(
            "--conversations", min=1, help="Only the first N conversations (of the --split)."
        ),
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Also write the comparison as a PNG image.")
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write every measure and the run's settings as JSON."),
    ] = None,
    llm_tokens_per_s: Annotated[
        float,
        typer.Option(
            "--llm-tokens-per-s",
            min=0,
            help="Replay a streaming LLM at this speed and count the tokens each strategy "
            "pays (0: a plain pause of --latency-ms); its time per turn replaces --latency-ms.",
        ),
    ] = 0.0,
    llm_ttft_ms: Annotated[
        int, typer.Option("--llm-ttft-ms", min=0, help="Its time to first token.")
    ] = 300,
    llm_answer_tokens: Annotated[
        int, typer.Option("--llm-answer-tokens", min=1, help="Tokens of each answer.")
    ] = 60,
    llm_prompt_tokens: Annotated[
        int,
        typer.Option(
            "--llm-prompt-tokens",
            min=0,
            help="Tokens of each request besides the turn's messages (prompt, tools, history).",
        ),
    ] = 1000,
) -> None:
    """Replay real chat timing through acf, fixed windows (with and without supersede) and
    naive replies: replies, talked-over replies, unanswered runs, superseded work and added
    wait."""
    import asyncio
    import dataclasses

    from rich.console import Console

    from acf.domain.channels import Channel
    from acf.logging import configure_logging
    from acf.replay import report
    from acf.replay.simulate import default_strategies, simulate
    from acf.replay.sources import SourceError, detect, read
    from acf.replay.split import HALVES, SPLIT_SEED
    from acf.replay.tokens import TokenModel
    from acf.replay.typing_model import TypingModel

    try:
        chosen = Channel(channel)
    except ValueError:
        _refuse(f"unknown channel {channel!r}")
    if split not in HALVES:
        _refuse(f"--split must be one of {', '.join(HALVES)}, not {split!r}")
    _check_outputs(json_path, plot_path)
    seed = SPLIT_SEED if split_seed is None else split_seed
    try:
        lines = read(path, fmt)
        log_format = fmt or detect(path)
    except (SourceError, OSError) as exc:
        _refuse(str(exc))
    lines = _chosen(lines, split, seed, conversations)
    if not lines:
        _refuse(f"{path} holds no message" + ("" if split == "all" else f" in its {split} half"))
    configure_logging("CRITICAL")
    console = Console(stderr=True)
    typing = TypingModel(cps=typing_cps) if typing_cps > 0 else None
    tokens = None
    pipeline = f"pipeline {latency_ms} ms"
    if llm_tokens_per_s > 0:
        tokens = TokenModel(llm_ttft_ms, llm_tokens_per_s, llm_answer_tokens, llm_prompt_tokens)
        pipeline = (
            f"LLM {llm_ttft_ms} ms to first token, {llm_tokens_per_s:g} tokens/s, "
            f"{llm_answer_tokens}-token answers ({tokens.latency_ms} ms)"
        )
    strategies = default_strategies(chosen, typing is not None)
    measures = []
    for strategy in strategies:
        with console.status(f"replaying {len(lines)} messages: {strategy.name}"):
            measures.append(
                asyncio.run(simulate(lines, strategy, latency_ms, chosen, typing, tokens=tokens))
            )
    half = "" if split == "all" else f" ({split} half, seed {seed})"
    title = (
        f"{path.name}{half}: {measures[0].messages} messages, {measures[0].runs} same-sender "
        f"runs; {pipeline}; typing {f'{typing_cps:g} cps' if typing else 'off'}; "
        f"{chosen.value} policy"
    )
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=WIDE)  # written to a file: room for every column
    out.print(report.table(measures, title))
    tokens_table = report.token_table(measures, "tokens paid (LLM stand-in)")
    if tokens_table is not None:
        out.print(tokens_table)
    if json_path is not None:
        settings = {
            "log": str(path),
            "format": log_format,
            "split": split,
            "split_seed": seed,
            "conversations": conversations,
            "latency_ms": tokens.latency_ms if tokens else latency_ms,
            "typing_model": None if typing is None else dataclasses.asdict(typing),
            "channel": chosen.value,
            "channel_policy": report.jsonable(dataclasses.asdict(strategies[0].policy)),
            "strategies": [report.strategy_settings(s) for s in strategies],
            **report.measuring_settings(),
            "llm": None if tokens is None else dataclasses.asdict(tokens),
        }
        _write(json_path, lambda: report.write_json(json_path, measures, settings))
        typer.echo(f"results written to {json_path}")
    if plot_path is not None:
        _write(plot_path, lambda: report.plot(measures, title, plot_path))
        typer.echo(f"plot written to {plot_path}")


def _check_outputs(json_path: Path | None, plot_path: Path | None) -> None:
    """Refuse (exit 2) output paths that cannot be written, and a plot without matplotlib,
    before the replay rather than after it."""
    import importlib.util

    from acf.replay.outputs import unwritable

    for option, path in (("--json", json_path), ("--plot", plot_path)):
        why = None if path is None else unwritable(path)
        if why is not None:
            _refuse(f"{option}: cannot write {path}: {why}")
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        _refuse("--plot needs matplotlib: pip install 'acf[plot]' (make install has it)")


def _write(path: Path, write: Callable[[], None]) -> None:
    """Write an output; a failure (a full disk, say) is said on stderr, exit status 1."""
    try:
        write()
    except (OSError, RuntimeError) as exc:
        typer.echo(f"error: cannot write {path}: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _refuse(message: str) -> NoReturn:
    """A usage error: said on stderr, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _chosen(
    lines: "list[ChatLine]", half: str, seed: int, conversations: int | None
) -> "list[ChatLine]":
    """The half of the log asked for, then its first ``conversations`` conversations."""
    from acf.replay.split import first_conversations, split

    chosen = split(lines, half, seed)
    return chosen if conversations is None else first_conversations(chosen, conversations)


@app.command("bench")
def bench(
    turns: Annotated[
        int, typer.Option("--turns", min=10, help="Turns for the overhead measurement.")
    ] = 1000,
    sessions: Annotated[
        int, typer.Option("--sessions", min=10, help="Sessions for the throughput measurement.")
    ] = 10_000,
    memory_sessions: Annotated[
        int, typer.Option("--memory-sessions", min=10, help="Sessions for the memory measurement.")
    ] = 2_000,
    peer: Annotated[
        bool, typer.Option("--peer/--no-peer", help="Also measure LangGraph (the 'bench' extra).")
    ] = True,
    durability: Annotated[
        str, typer.Option("--durability", help="SQLite synchronous level: full or normal.")
    ] = "full",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON.")
    ] = None,
    timeout_s: Annotated[
        float,
        typer.Option(
            "--timeout", min=1, help="Seconds a measurement may wait for its replies (600)."
        ),
    ] = 600.0,
    sweep_sizes: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            help="Only acf's cost per turn at these session counts, e.g. 1000,5000,10000,20000.",
        ),
    ] = None,
) -> None:
    """Fabric overhead, throughput and memory, beside a naive baseline and LangGraph.

    Turns that end FAILED and fallback replies are counted and reported (a run with any
    misses its target and exits 1); a measurement never waits longer than ``--timeout``."""
    import asyncio

    from rich.console import Console

    from acf.adapters.sqlite.database import Durability
    from acf.bench import report
    from acf.bench.measure import Result, measure
    from acf.bench.subjects import AcfSubject, LangGraphSubject, NaiveSubject, Subject
    from acf.logging import configure_logging

    try:
        level = Durability(durability)
    except ValueError:
        typer.echo(f"error: --durability must be full or normal, not {durability!r}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging("CRITICAL")
    console = Console(stderr=True)
    if sweep_sizes is not None:
        _sweep(sweep_sizes, level, timeout_s, json_path)
        return
    makers: list[tuple[str, Callable[[], Subject]]] = [
        ("acf", lambda: AcfSubject(level)),
        ("naive", NaiveSubject),
    ]
    if peer:
        makers.append(("LangGraph", LangGraphSubject))
    results: list[Result] = []
    for label, make in makers:
        with console.status(f"measuring {label}"):
            try:
                results.append(
                    asyncio.run(measure(make, turns, sessions, memory_sessions, timeout_s))
                )
            except RuntimeError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(code=1) from None
    out = Console()
    out.print(report.table(results))
    acf_result = results[0]
    peer_result = results[2] if peer else None
    for name, value in report.ratios(acf_result, peer_result).items():
        out.print(f"{name}: {value:.2f}")
    for name, met in report.verdicts(acf_result, peer_result).items():
        out.print(f"target {name}: {'met' if met else 'MISSED'}")
    if json_path is not None:
        settings = {
            "turns": turns,
            "sessions": sessions,
            "memory_sessions": memory_sessions,
            "durability": level.value,
            "timeout_s": timeout_s,
        }
        report.write_json(json_path, results, settings)
        out.print(f"results written to {json_path}")
    if acf_result.failed_turns or acf_result.fallback_replies:
        out.print(
            f"RUN INCORRECT: {acf_result.failed_turns} failed turn(s), "
            f"{acf_result.fallback_replies} fallback repl(ies), "
            f"{acf_result.lease_lost} lease.lost event(s)"
        )
        raise typer.Exit(code=1)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(n < 1 for n in sizes):
        typer.echo(
            f"error: --sweep takes session counts separated by commas, not {text!r}", err=True
        )
        raise typer.Exit(code=2)
    return sizes


def _sweep(text: str, level: "Durability", timeout_s: float, json_path: Path | None) -> None:
    import asyncio

    from rich.console import Console

    from acf.bench import report
    from acf.bench.subjects import AcfSubject
    from acf.bench.sweep import flatness, point

    sizes = _sizes(text)
    points = []
    for n in sizes:
        with Console(stderr=True).status(f"sweep: {n:,} sessions"):
            points.append(asyncio.run(point(lambda: AcfSubject(level), n, timeout_s)))
    out = Console()
    out.print(report.sweep_table(points))
    out.print(f"CPU per turn, largest ÷ smallest: {flatness(points):.2f} (flat: 1.00)")
    for p in points:
        if p.error:
            out.print(f"{p.sessions:,} sessions: {p.error}")
    if json_path is not None:
        settings = {"sizes": sizes, "durability": level.value, "timeout_s": timeout_s}
        report.write_sweep_json(json_path, points, settings)
        out.print(f"results written to {json_path}")
    if not all(p.correct for p in points):
        out.print("RUN INCORRECT: some turns failed or got the fallback (see above)")
        raise typer.Exit(code=1)
