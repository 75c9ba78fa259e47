"""``acf demo``: five acts on the real embedded runtime, told as timelines in the terminal.

No server and no real waiting: each act runs the runtime on a fresh SQLite file in a
temporary folder, on a virtual clock (the scenario harness), serving the demo agent on the
web channel. The timeline of each act is read back from the store's events; its summary is
computed from what happened (events, ledger, backend counters, delivered replies), and an
act whose expectations are not met fails.
"""

import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from acf.demo.terminal_acts import ACTS, Act, Checks, Facts
from acf.demo.terminal_stage import CHANNEL, Stage, Step
from acf.demo.terminal_timeline import Row

ACT_NAMES = tuple(act.name for act in ACTS)

COLOURS = {
    "message": "cyan",
    "window": "blue",
    "turn": "green",
    "supersede": "yellow",
    "tool": "magenta",
    "confirmation": "bright_cyan",
    "delivery": "bright_green",
    "failure": "bold red",
}


@dataclass(slots=True)
class ActResult:
    name: str
    headline: str
    setting: str
    steps: list[Step] = field(default_factory=list)
    timeline: list[Row] = field(default_factory=list)
    facts: Facts = field(default_factory=dict)
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    virtual_ms: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "act": self.name,
            "headline": self.headline,
            "setting": self.setting,
            "steps": [s.as_json() for s in self.steps],
            "timeline": [r.as_json() for r in self.timeline],
            "facts": self.facts,
            "summary": self.summary,
            "passed": self.passed,
            "problems": self.problems,
            "virtual_ms": self.virtual_ms,
        }


def choose(names: Iterable[str]) -> list[Act]:
    """The acts named (in the order given, once each); all of them when none is named."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in ACT_NAMES]
    if unknown:
        raise ValueError(f"unknown act {unknown[0]!r}; the acts are {', '.join(ACT_NAMES)}")
    return [a for n in wanted for a in ACTS if a.name == n] if wanted else list(ACTS)


async def play(act: Act) -> ActResult:
    """Play one act on a fresh store in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="acf-demo-") as folder:
        stage = Stage(Path(folder))
        policy = stage.settings.policy_for(CHANNEL)
        setting = (
            f"{CHANNEL.value} chat, {policy.mode.value} window {policy.window_ms} ms "
            f"(min {policy.min_window_ms}, max {policy.max_window_ms}); virtual clock"
        )
        result = ActResult(act.name, act.headline, setting)
        check = Checks()
        await stage.open()
        try:
            customers, result.facts, result.summary = await act.play(stage, check)
            result.timeline = await stage.timeline(customers)
        except Exception as exc:  # the act's own failure is its result, not a traceback
            check.problems.append(f"the act stopped: {type(exc).__name__}: {exc}")
            result.summary = result.summary or "the act did not finish"
        finally:
            result.virtual_ms = stage.now()
            result.steps = list(stage.steps)
            await stage.close()
        result.problems = check.problems
        return result


async def play_all(acts: Sequence[Act]) -> list[ActResult]:
    return [await play(act) for act in acts]


# -- the terminal ------------------------------------------------------------------------------


def _step_text(step: Step) -> Text:
    line = Text.assemble((f"+{step.at_ms:>6} ms  ", "dim"))
    line.append(step.customer, style="bold")
    pid = step.provider_message_id
    if step.action == "says":
        line.append(f' says "{step.text}"')
        if pid:
            line.append(f" (provider id {pid})", style="dim")
    elif step.action == "resent":
        line.append(f'\'s provider resends "{step.text}" (same id {pid})', style="yellow")
    elif step.action == "taps":
        line.append(f" taps [{step.text}]")
    else:
        line.append(f" {step.text}", style="dim")
    return line


def _timeline_table(rows: Sequence[Row]) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
    table.add_column("time", justify="right", style="dim", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for row in rows:
        style = COLOURS.get(row.category, "")
        table.add_row(f"+{row.at_ms} ms", Text(row.kind, style=style), escape(row.detail))
    return table


def render_act(result: ActResult, number: int, total: int) -> Group:
    parts: list[Any] = [
        Rule(f"[bold]{number}/{total} {escape(result.headline)}[/bold]", align="left"),
        Text(f"act {result.name} · {result.setting}", style="dim"),
        Text("what the customer sends:", style="bold"),
        *(_step_text(s) for s in result.steps),
        Text("timeline (from the store's events):", style="bold"),
        _timeline_table(result.timeline),
    ]
    if result.passed:
        parts.append(Text.assemble(("✓ what this shows: ", "bold green"), result.summary))
    else:
        parts.append(Text.assemble(("✗ not as promised: ", "bold red"), (result.summary, "red")))
        parts += [Text(f"  - {p}", style="red") for p in result.problems]
    parts.append(Text(""))
    return Group(*parts)


def render(results: Sequence[ActResult], console: Console, wall_s: float | None = None) -> None:
    for number, result in enumerate(results, 1):
        console.print(render_act(result, number, len(results)))
    failed = [r.name for r in results if not r.passed]
    took = "" if wall_s is None else f" in {wall_s:.1f} s of real time"
    if failed:
        names = ", ".join(failed)
        console.print(
            Text(f"{len(failed)} of {len(results)} acts not as promised: {names}", "bold red")
        )
    else:
        console.print(Text(f"all {len(results)} acts as promised{took}", style="bold green"))


def run(names: Iterable[str] = ()) -> tuple[list[ActResult], float]:
    """Play the named acts (all by default); the results and the real time it took."""
    import asyncio

    acts = choose(names)
    started = time.perf_counter()
    results = asyncio.run(play_all(acts))
    return results, time.perf_counter() - started
