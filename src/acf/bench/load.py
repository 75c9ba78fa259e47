"""The load test of seed 004 Story 8: web-chat customers (Locust) against ``acf serve`` with
a router in front of a fake model and a fake agent service, on loopback, bounded.

``python -m acf.bench.load [--users 50] [--duration 600] [--json PATH]`` (``make load``)

- Three processes (``acf.bench.load_servers``), each on its own free loopback port: the
  fake model (``python -m acf.testing.fake_openai_server``: ``--ttft-ms`` to the first
  token, then ``--tokens-per-s``), the fake agent service (``python -m
  acf.testing.fake_agent_service_server``: a THOUGHT ``--agent-first-event-ms`` after the
  request, then ``--agent-chunks`` answer chunks ``--agent-chunk-ms`` apart, then
  COMPLETE) and ``acf serve`` (embedded SQLite in a temporary data directory) whose one
  web agent is a router between the two (rule ``/agent``), with the web channel's
  default accumulation and a raised message rate limit (``--rate-limit``).
- Locust in its own process (``acf.bench.load_locustfile``; gevent never enters this one),
  headless, ``--users`` customers spawned at ``--spawn-rate``, for ``--duration`` seconds;
  then each customer finishes the conversation it is in (at most two ``--timeout`` more).
  The conversations are described in ``acf.bench.load_script``.
- Meanwhile acf's resident memory and CPU time (``/proc``) are read every second beside
  the number of conversations ended: "before" is the reading once ``--warmup-conversations``
  had ended, "after" the one 1,000 conversations later.
- At the end the invariants are checked through acf's API (``acf.bench.load_checks``).

Exit status 1 when a request or conversation failed, an invariant does not hold or acf
logged an error; the timing and memory targets are reported, never asserted (machines are
shared and noisy).
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from acf.bench.load_checks import check
from acf.bench.load_report import LoadRun, Readings, print_run, read_locust
from acf.bench.load_script import KEY_ENV, SETTINGS_ENV, Record, UserSettings
from acf.bench.load_servers import AGENT, ANSWER, Pace, Servers, read_process, servers

LOCUST_PREFIX = "locust"


async def _sample(pid: int, records: Path, readings: Readings, started: float) -> None:
    """Every second: acf's memory and CPU time, and the conversations ended so far."""
    ended = 0
    offset = 0
    while True:
        chunk = await asyncio.to_thread(_read_from, records, offset)
        offset += len(chunk)
        ended += chunk.count(b"\n")
        readings.samples.append(read_process(pid, time.monotonic() - started, ended))
        await asyncio.sleep(1.0)


def _read_from(path: Path, offset: int) -> bytes:
    if not path.exists():
        return b""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


def locustfile() -> str:
    if importlib.util.find_spec("locust") is None:
        raise RuntimeError("Locust is not installed: pip install 'acf[load]'")
    spec = importlib.util.find_spec("acf.bench.load_locustfile")
    if spec is None or spec.origin is None:
        raise RuntimeError("acf.bench.load_locustfile is missing")
    return spec.origin


async def _locust(folder: Path, s: Servers, users: UserSettings, args: argparse.Namespace) -> None:
    """Locust, headless, in its own process, to its end (output in ``locust.log``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    env.update({SETTINGS_ENV: users.model_dump_json(), KEY_ENV: s.key, "PYTHONUNBUFFERED": "1"})
    prefix = str(folder / LOCUST_PREFIX)
    command = [sys.executable, "-m", "locust", "-f", locustfile(), "--headless"]
    command += ["-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s"]
    stop_s = math.ceil(2 * args.timeout) + 10  # a conversation's two exchanges
    command += ["--host", s.base_url, "--stop-timeout", f"{stop_s}s"]
    command += ["--json-file", prefix, "--csv", prefix, "--only-summary", "-L", "WARNING"]
    command += ["--exit-code-on-error", "0", "WebChatCustomer"]
    with (folder / "locust.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        limit_s = args.duration + stop_s + 60
        try:
            async with asyncio.timeout(limit_s):
                code = await process.wait()
        except TimeoutError:
            raise RuntimeError(f"locust did not end within {limit_s:g} s") from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    if code != 0 or not (folder / f"{LOCUST_PREFIX}.json").exists():
        tail = (folder / "locust.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"locust exited with {code}: {tail}")


def read_records(path: Path) -> list[Record]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Record.model_validate_json(line) for line in lines if line.strip()]


async def run(args: argparse.Namespace) -> LoadRun:
    folder = args.logs or Path(tempfile.mkdtemp(prefix="acf-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "data").exists():
        raise RuntimeError(f"{folder} holds the data of an earlier run: name another --logs")
    records_path = folder / "conversations.jsonl"
    records_path.unlink(missing_ok=True)
    users = UserSettings(
        agent=AGENT,
        records=str(records_path),
        seed=args.seed,
        delegated=args.delegated,
        correction=args.correction,
        polling=args.polling,
        followup=args.followup,
        wait_min_s=args.wait_min,
        wait_max_s=args.wait_max,
        timeout_s=args.timeout,
    )
    load_start = os.getloadavg()[0]
    readings = Readings(args.warmup_conversations)
    phases: dict[str, float] = {}
    clock = time.monotonic()
    pace = Pace(
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        agent_first_event_ms=args.agent_first_event_ms,
        agent_chunk_ms=args.agent_chunk_ms,
        agent_chunks=args.agent_chunks,
        rate_limit=args.rate_limit,
    )
    async with servers(folder, pace) as s:
        started = time.monotonic()
        phases["start_s"] = started - clock
        sampler = asyncio.create_task(_sample(s.acf_pid, records_path, readings, started))
        try:
            await _locust(folder, s, users, args)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        records = read_records(records_path)
        readings.samples.append(read_process(s.acf_pid, time.monotonic() - started, len(records)))
        phases["load_s"] = time.monotonic() - started
        headers = {"Authorization": f"Bearer {s.key}"}
        async with httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=30) as http:
            invariants = await check(http, records, ANSWER, settle_s=args.settle)
        phases["check_s"] = time.monotonic() - started - phases["load_s"]
        await asyncio.sleep(0.2)  # acf's last lines reach its log
        s.processes.check_alive()
        problems = s.processes.problems()
        stopping = time.monotonic()
    phases["stop_s"] = time.monotonic() - stopping
    stats, failures = read_locust(folder, LOCUST_PREFIX)
    return LoadRun(
        settings=_settings(args),
        records=records,
        locust=stats,
        locust_failures=failures,
        readings=readings,
        invariants=invariants,
        log_problems=problems.pop("acf", []),
        tool_log_problems=[line for lines in problems.values() for line in lines],
        phases_s={name: round(value, 1) for name, value in phases.items()},
        logs=str(folder),
        load=(load_start, os.getloadavg()[0]),
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": args.duration,
        "delegated": args.delegated,
        "correction": args.correction,
        "polling": args.polling,
        "followup": args.followup,
        "wait_s": [args.wait_min, args.wait_max],
        "exchange_timeout_s": args.timeout,
        "llm_ttft_ms": args.ttft_ms,
        "llm_tokens_per_s": args.tokens_per_s,
        "agent_first_event_ms": args.agent_first_event_ms,
        "agent_chunk_ms": args.agent_chunk_ms,
        "agent_chunks": args.agent_chunks,
        "accumulation": "the web channel's default (adaptive, 600 ms; 250-3000 ms)",
        "rate_limit": args.rate_limit,
        "store": "embedded (SQLite)",
        "seed": args.seed,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m acf.bench.load",
        description="Web-chat customers (Locust) against acf serve routing between a fake "
        "model and a fake agent service: errors, first visible chunk, delegated "
        "conversations at once, memory, invariants.",
    )
    p.add_argument("--users", type=int, default=50, help="simulated customers (50)")
    p.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    p.add_argument("--duration", type=int, default=600, help="seconds of load (600)")
    p.add_argument("--delegated", type=float, default=0.3, help="share sent with /agent (0.3)")
    p.add_argument("--correction", type=float, default=0.2, help="share corrected (0.2)")
    p.add_argument("--polling", type=float, default=0.2, help="share read by polling (0.2)")
    p.add_argument("--followup", type=float, default=0.3, help="share with a follow-up (0.3)")
    p.add_argument("--wait-min", type=float, default=0.5, help="between conversations, s")
    p.add_argument("--wait-max", type=float, default=2.0, help="between conversations, s")
    p.add_argument("--timeout", type=float, default=30.0, help="per exchange's reply, s")
    p.add_argument("--ttft-ms", type=int, default=1000, help="the model's time to first token")
    p.add_argument("--tokens-per-s", type=float, default=30.0, help="the model's pace (30)")
    p.add_argument("--agent-first-event-ms", type=int, default=800, help="to its THOUGHT")
    p.add_argument("--agent-chunk-ms", type=int, default=200, help="before each later event")
    p.add_argument("--agent-chunks", type=int, default=15, help="answer chunks (15)")
    p.add_argument("--rate-limit", default="500/second", help="the tenant's message rate")
    p.add_argument("--warmup-conversations", type=int, default=100, help="before 'before'")
    p.add_argument("--settle", type=float, default=30.0, help="for the sessions to settle, s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--logs", type=Path, default=None, help="logs and data (a kept temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from acf.logging import configure_logging

    p = parser()
    args = p.parse_args(argv)
    if args.users < 1 or args.duration < 1 or args.spawn_rate <= 0 or args.tokens_per_s <= 0:
        p.error("expected --users >= 1, --duration >= 1, --spawn-rate > 0, --tokens-per-s > 0")
    if not 0 <= args.wait_min <= args.wait_max or args.agent_chunks < 1:
        p.error("expected 0 <= --wait-min <= --wait-max and --agent-chunks >= 1")
    for share in ("delegated", "correction", "polling", "followup"):
        if not 0 <= getattr(args, share) <= 1:
            p.error(f"expected --{share} between 0 and 1")
    configure_logging("CRITICAL")
    print(
        f"{args.users} customers for {args.duration} s against acf serve (logs and data in "
        f"{args.logs or 'a temporary directory'})…",
        file=sys.stderr,
        flush=True,
    )
    try:
        result = asyncio.run(run(args))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_run(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n")
        print(f"results written to {args.json}")
    if not result.correct:
        print("RUN INCORRECT: see the errors, invariants and acf's log problems above")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
