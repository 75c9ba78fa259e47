"""The load test's figures: Locust's request counts and failures, the conversations'
errors and first visible chunk (p50/p95), the delegated conversations in flight at once,
acf's resident memory along the run, the invariants, the targets; a table and the JSON.
"""

import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from acf.bench.load_checks import Invariants
from acf.bench.load_script import Reading, Record, Route, Seen
from acf.bench.report import machine
from acf.stats import percentile

FIRST_VISIBLE_TARGET_MS = 2000.0
"""Seed 004 Story 8: the first response chunk within 2 s (p50 and p95), with a 1 s time
to first token and the web channel's accumulation window."""
DELEGATED_TARGET = 20
"""Seed 004 Story 8: 20 concurrent conversations delegated to the agent service."""
MEMORY_SPAN = 1000
"""Conversations between the two memory readings."""
MEMORY_GROWTH_NOISE = 1.10
"""Resident memory after ``MEMORY_SPAN`` conversations / before: at most this (noise)."""


class LocustEntry(BaseModel):
    """One line of Locust's ``--json-file`` stats (the parts used)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    method: str | None = None
    num_requests: int
    num_failures: int


@dataclass(frozen=True, slots=True)
class Spread:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(0, 0.0, 0.0, 0.0, 0.0)
    return Spread(
        len(values),
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        max(values),
    )


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """One reading of acf's process."""

    at_s: float
    """Since the load started."""
    rss_mb: float
    """Resident memory (``/proc/<pid>/status`` VmRSS)."""
    cpu_s: float
    """CPU time used since it started (``/proc/<pid>/stat``, user + system)."""
    conversations: int
    """Conversations ended by then."""


@dataclass(slots=True)
class Readings:
    """acf's process along the run, read every second."""

    warmup: int
    """Conversations before the memory reading called "before"."""
    samples: list[ProcessSample] = field(default_factory=list)

    def at(self, conversations: int) -> ProcessSample | None:
        """The first reading taken once ``conversations`` had ended."""
        return next((s for s in self.samples if s.conversations >= conversations), None)

    def figures(self) -> dict[str, Any]:
        before, after = self.at(self.warmup), self.at(self.warmup + MEMORY_SPAN)
        first = self.samples[0] if self.samples else None
        last = self.samples[-1] if self.samples else None
        return {
            "at_start_mb": None if first is None else first.rss_mb,
            "before_mb": None if before is None else before.rss_mb,
            "before_at_conversations": None if before is None else before.conversations,
            "after_mb": None if after is None else after.rss_mb,
            "after_at_conversations": None if after is None else after.conversations,
            "ratio": None if before is None or after is None else after.rss_mb / before.rss_mb,
            "at_end_mb": None if last is None else last.rss_mb,
            "peak_mb": max((s.rss_mb for s in self.samples), default=None),
        }

    def cpu_share(self) -> float | None:
        """acf's CPU time over the load / the load's wall time (1.0: one core, full)."""
        if len(self.samples) < 2:
            return None
        first, last = self.samples[0], self.samples[-1]
        wall = last.at_s - first.at_s
        return None if wall <= 0 else (last.cpu_s - first.cpu_s) / wall


def most_at_once(intervals: Sequence[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals open at one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def read_locust(folder: Path, prefix: str) -> tuple[list[LocustEntry], dict[str, int]]:
    """Locust's stats (``<prefix>.json``) and its failures by message (the CSV)."""
    stats_path = folder / f"{prefix}.json"
    if not stats_path.exists():
        return [], {}
    entries = TypeAdapter(list[LocustEntry]).validate_json(stats_path.read_bytes())
    failures: dict[str, int] = {}
    failures_path = folder / f"{prefix}_failures.csv"
    if failures_path.exists():
        with failures_path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                key = f"{row.get('Method', '')} {row.get('Name', '')}: {row.get('Error', '')}"
                failures[key[:300]] = int(row.get("Occurrences") or 0)
    return entries, failures


@dataclass(slots=True)
class LoadRun:
    settings: dict[str, Any]
    records: list[Record]
    locust: list[LocustEntry]
    locust_failures: dict[str, int]
    readings: Readings
    invariants: Invariants
    log_problems: list[str] = field(default_factory=list)
    """Lines of acf's log that look like errors."""
    tool_log_problems: list[str] = field(default_factory=list)
    """The same of the fake model's and agent service's logs (reported, not judged)."""
    phases_s: dict[str, float] = field(default_factory=dict)
    """Wall time of each phase: starting the processes, the load, the checks, stopping."""
    logs: str = ""
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def requests(self) -> int:
        return sum(e.num_requests for e in self.locust)

    @property
    def http_failures(self) -> int:
        return sum(e.num_failures for e in self.locust)

    @property
    def conversation_errors(self) -> Counter[str]:
        return Counter(str(r.error)[:120] for r in self.records if r.error is not None)

    @property
    def resent(self) -> int:
        """Requests whose connection broke before an answer, sent again and answered."""
        return sum(r.resent for r in self.records)

    @property
    def errors(self) -> int:
        """HTTP failures not made good by sending again, and failed conversations."""
        return self.http_failures - self.resent + sum(self.conversation_errors.values())

    def first_visible(self, route: Route | None = None) -> Spread:
        """First visible chunk of the exchanges read from the SSE stream."""
        return self._streamed(lambda e: e.first_visible_ms, route)

    def window(self, route: Route | None = None) -> Spread:
        """From an exchange's last 202 to the start of the turn holding it (SSE)."""
        return self._streamed(lambda e: e.turn_started_ms, route)

    def start_to_visible(self, route: Route | None = None) -> Spread:
        """From that start to the first visible chunk: the model or agent, and acf."""

        def between(e: Seen) -> float | None:
            if e.first_visible_ms is None or e.turn_started_ms is None:
                return None
            return e.first_visible_ms - e.turn_started_ms

        return self._streamed(between, route)

    def _streamed(self, figure: Callable[[Seen], float | None], route: Route | None) -> Spread:
        values = [
            figure(e)
            for r in self.records
            if r.reading is Reading.STREAM and (route is None or r.route is route)
            for e in r.seen
        ]
        return spread([v for v in values if v is not None])

    def reply_seen(self, reading: Reading) -> Spread:
        """From an exchange's last 202 to its delivered reply being read."""
        values = [e.reply_ms for r in self.records if r.reading is reading for e in r.seen]
        return spread([v for v in values if v is not None])

    def delegated_at_once(self) -> int:
        return most_at_once(
            [(r.started, r.ended) for r in self.records if r.route is Route.AGENT and r.ended]
        )

    def verdicts(self) -> dict[str, bool | None]:
        """Each target: met, missed, or None when the run was too short to tell."""
        seen = self.first_visible()
        ratio = self.readings.figures()["ratio"]
        return {
            "errors: 0": self.errors == 0,
            f"first visible chunk p50 and p95 < {FIRST_VISIBLE_TARGET_MS:g} ms": (
                seen.n > 0
                and seen.p50_ms < FIRST_VISIBLE_TARGET_MS
                and seen.p95_ms < FIRST_VISIBLE_TARGET_MS
            ),
            f">= {DELEGATED_TARGET} delegated conversations at once": (
                self.delegated_at_once() >= DELEGATED_TARGET
            ),
            f"resident memory after {MEMORY_SPAN} conversations <= "
            f"x{MEMORY_GROWTH_NOISE:g} of before": None
            if ratio is None
            else ratio <= MEMORY_GROWTH_NOISE,
            "invariants held": self.invariants.held,
        }

    @property
    def correct(self) -> bool:
        """No error, every invariant held and acf logged no error (timings aside)."""
        return self.errors == 0 and self.invariants.held and not self.log_problems

    def as_json(self) -> dict[str, Any]:
        by_route = Counter(r.route.value for r in self.records)
        by_reading = Counter(r.reading.value for r in self.records)
        inv = asdict(self.invariants)
        inv["turns"] = dict(self.invariants.turns)
        inv["problems"] = self.invariants.problems[:50]
        inv["problem_count"] = len(self.invariants.problems)
        inv["held"] = self.invariants.held
        return {
            "machine": {**machine(), "load_average_1m_at_start_and_end": self.load},
            "settings": self.settings,
            "requests": self.requests,
            "http_failures": self.http_failures,
            "http_failures_resent_and_answered": self.resent,
            "requests_by_name": {
                f"{e.method or ''} {e.name}".strip(): {
                    "requests": e.num_requests,
                    "failures": e.num_failures,
                }
                for e in self.locust
            },
            "http_failure_messages": self.locust_failures,
            "conversations": {
                "total": len(self.records),
                "by_route": dict(by_route),
                "by_reading": dict(by_reading),
                "corrected": sum(r.corrected for r in self.records),
                "with_a_follow_up": sum(r.exchanges > 1 for r in self.records),
                "messages": sum(r.accepted for r in self.records),
                "completed": sum(r.completed for r in self.records),
                "interrupted_at_the_end": sum(r.interrupted for r in self.records),
                "errors": sum(self.conversation_errors.values()),
                "error_messages": dict(self.conversation_errors.most_common(20)),
            },
            "errors": self.errors,
            "first_visible_chunk_ms": {
                "all (SSE)": asdict(self.first_visible()),
                "direct (SSE)": asdict(self.first_visible(Route.DIRECT)),
                "delegated (SSE)": asdict(self.first_visible(Route.AGENT)),
            },
            "last_message_to_turn_started_ms": {
                "direct (SSE)": asdict(self.window(Route.DIRECT)),
                "delegated (SSE)": asdict(self.window(Route.AGENT)),
            },
            "turn_started_to_first_visible_chunk_ms": {
                "direct (SSE)": asdict(self.start_to_visible(Route.DIRECT)),
                "delegated (SSE)": asdict(self.start_to_visible(Route.AGENT)),
            },
            "reply_read_ms": {
                "SSE": asdict(self.reply_seen(Reading.STREAM)),
                "polling": asdict(self.reply_seen(Reading.POLL)),
            },
            "delegated_conversations_at_once": self.delegated_at_once(),
            "conversations_at_once": most_at_once(
                [(r.started, r.ended) for r in self.records if r.ended]
            ),
            "memory": {
                **self.readings.figures(),
                "warmup_conversations": self.readings.warmup,
                "span_conversations": MEMORY_SPAN,
                "samples": [asdict(s) for s in _thinned(self.readings.samples, 120)],
            },
            "acf_cpu_share_of_one_core": self.readings.cpu_share(),
            "invariants": inv,
            "targets": self.verdicts(),
            "correct": self.correct,
            "log_problems": self.log_problems[:20],
            "tool_log_problems": self.tool_log_problems[:20],
            "phases_s": self.phases_s,
            "logs": self.logs,
        }


def print_run(run: LoadRun) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    st = run.settings
    table = Table(
        title=f"acf load: {st['users']} web-chat users for {st['duration_s']} s, "
        f"{st['delegated']:.0%} delegated; model {st['llm_ttft_ms']} ms to first token, "
        f"agent service {st['agent_first_event_ms']} ms to first event"
    )
    table.add_column("figure", justify="left")
    table.add_column("value", justify="right")
    conversations = run.as_json()["conversations"]
    rows: list[tuple[str, str]] = [
        ("HTTP requests", f"{run.requests:,}"),
        ("HTTP failures (of which re-sent and answered)", f"{run.http_failures} ({run.resent})"),
        ("conversations (direct / delegated)", _pair(conversations["by_route"])),
        ("messages accepted", f"{conversations['messages']:,}"),
        ("conversation errors", f"{conversations['errors']}"),
        (
            "interrupted by Locust's stop",
            f"{conversations['interrupted_at_the_end']}",
        ),
    ]
    for label, route in (("all", None), ("direct", Route.DIRECT), ("delegated", Route.AGENT)):
        s = run.first_visible(route)
        rows.append(
            (
                f"first visible chunk, {label} (SSE): p50 / p95 / max",
                f"{s.p50_ms:.0f} / {s.p95_ms:.0f} / {s.max_ms:.0f} ms (n={s.n})",
            )
        )
    for label, route in (("direct", Route.DIRECT), ("delegated", Route.AGENT)):
        w, v = run.window(route), run.start_to_visible(route)
        rows.append(
            (
                f"  of which {label}: window / turn start to chunk, p50",
                f"{w.p50_ms:.0f} / {v.p50_ms:.0f} ms",
            )
        )
    poll = run.reply_seen(Reading.POLL)
    rows.append(("reply read by polling: p50 / p95", f"{poll.p50_ms:.0f} / {poll.p95_ms:.0f} ms"))
    rows.append(("delegated conversations at once (max)", f"{run.delegated_at_once()}"))
    mem = run.readings.figures()
    rows.append(
        ("acf RSS at start / peak / end", _mb(mem["at_start_mb"], mem["peak_mb"], mem["at_end_mb"]))
    )
    if mem["ratio"] is None:
        rows.append((f"RSS before / after {MEMORY_SPAN} conversations", "run too short"))
    else:
        rows.append(
            (
                f"RSS after {mem['before_at_conversations']} / {mem['after_at_conversations']} "
                "conversations",
                f"{mem['before_mb']:.1f} / {mem['after_mb']:.1f} MB (x{mem['ratio']:.3f})",
            )
        )
    cpu = run.readings.cpu_share()
    rows.append(("acf CPU over the load (1.0 = one core)", "-" if cpu is None else f"{cpu:.2f}"))
    inv = run.invariants
    rows.append(("sessions checked / turns", f"{inv.sessions:,} / {dict(inv.turns)}"))
    rows.append(("delegated follow-up turns kept on the agent route", f"{inv.sticky_turns}"))
    rows.append(
        ("dead letters / retried attempts", f"{inv.dead_letters} / {inv.attempt_failed_events}")
    )
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    for name, met in run.verdicts().items():
        verdict = "not measured (run too short)" if met is None else "met" if met else "MISSED"
        console.print(f"target {name}: {verdict}")
    for problem in inv.problems[:10]:
        console.print(f"invariant: {problem}")
    for message, count in list(run.locust_failures.items())[:5]:
        console.print(f"HTTP failure x{count}: {message}")
    for message, count in run.conversation_errors.most_common(5):
        console.print(f"conversation error x{count}: {message}")
    console.print(f"acf log problems: {run.log_problems[:3] or 'none'}; logs in {run.logs}")
    if run.tool_log_problems:
        console.print(f"the fake servers' log problems: {run.tool_log_problems[:3]}")
    console.print(f"phases (s): {run.phases_s}")
    console.print(f"load average (1 min) at start / end: {run.load[0]:.1f} / {run.load[1]:.1f}")


def _thinned(samples: Sequence[ProcessSample], most: int) -> list[ProcessSample]:
    """At most about ``most`` samples, evenly spaced, the last one kept."""
    step = max(1, len(samples) // most)
    kept = list(samples[::step])
    if samples and kept[-1] is not samples[-1]:
        kept.append(samples[-1])
    return kept


def _pair(counts: dict[str, int]) -> str:
    return f"{counts.get('direct', 0):,} / {counts.get('agent', 0):,}"


def _mb(*values: float | None) -> str:
    return " / ".join("-" if v is None else f"{v:.1f}" for v in values) + " MB"
