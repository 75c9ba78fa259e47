"""acf's added latency in front of a streaming LLM: the built-in ``llm`` agent beside the
``openai`` SDK called directly, against the same fake model, in the same run.

``python -m acf.bench.llm [--samples N] [--ttft-ms 300] [--tokens-per-s 30] [--json PATH]``

- The model is ``acf.testing.FakeOpenAI`` on loopback, in this process: a fixed answer of
  ``ANSWER_TOKENS`` tokens, ``--ttft-ms`` before the first, then ``--tokens-per-s``.
- acf is a real ``acf serve`` subprocess (embedded, a temporary data directory) whose
  configuration has one web agent of ``kind: llm`` pointing at the fake model, and
  accumulation ``mode: off`` on the web channel (no window added). Each acf sample is a
  web chat's first message: ``POST /v1/messages`` for a new customer (so a new session:
  no history, no summary request), then ``GET /v1/sessions/{id}/stream?drafts=true``
  read until ``response.delivered``.
- The baseline is ``AsyncOpenAI(...).chat.completions.create(stream=True)`` with the same
  system prompt, read to the stream's end.
- Samples alternate (SDK then acf, then acf then SDK …) one at a time, after
  ``--warmup`` untimed pairs, so the machine's noise hits both. Added latency = acf's
  figure - the SDK's (p50, p99), and their ratio.

The fake model records when each request arrived and ended (``time.monotonic()``, the
samples' clock too), so both subjects' time is also split at the model: before its request
arrives, and from its last byte to the answer's end as the client reads it. A sample whose
turn fails or falls back, whose text is not the model's, or that makes more than one model
request makes the run incorrect (exit 1). Timings are never asserted by tests.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from acf.bench.llm_report import Evidence, LlmRun, ModelSide, print_run, sample_figures
from acf.bench.llm_subjects import Sample, SdkBaseline, WebChatClient
from acf.bench.processes import Processes, free_port, run_acf, wait_ready
from acf.testing.fake_openai import FakeOpenAI, FakeRequest
from acf.testing.fake_openai_script import Answer, tokens

TENANT = "bench"
AGENT = "support"
MODEL = "fake-model"
KEY_ENV = "ACF_BENCH_LLM_API_KEY"
SYSTEM_PROMPT = "You are the support agent of a web shop. Answer in one short paragraph."
QUESTION = "Hello, where is my order R-1001? It should have arrived by now."
ANSWER = (
    "Your order R-1001 left our warehouse yesterday and should reach you on Thursday. "
    "You can follow the parcel with the tracking link in the confirmation email we sent "
    "this morning."
)
ANSWER_TOKENS = len(tokens(ANSWER))
_TAG = re.compile(r"\[((?:sdk|acf|warm-sdk|warm-acf)-\d+)\]")


def config_text(base_url: str) -> str:
    """The configuration ``acf serve`` runs: one web agent of ``kind: llm``, no window."""
    return (
        "version: 1\n"
        "tenants:\n"
        f"  {TENANT}:\n"
        "    channels:\n"
        "      web: {mode: off}\n"
        "    agents:\n"
        f"      {AGENT}:\n"
        "        pipeline:\n"
        "          kind: llm\n"
        f"          model: {MODEL}\n"
        f"          base_url: {base_url}\n"
        f"          api_key: ${{{KEY_ENV}}}\n"
        f"          system_prompt: {json.dumps(SYSTEM_PROMPT)}\n"
    )


@contextlib.asynccontextmanager
async def acf_server(folder: Path, model_url: str) -> AsyncIterator[tuple[str, str, Processes]]:
    """An ``acf serve`` (embedded) over a fresh data directory in ``folder``: its base URL,
    an API key of the tenant, and its process (always stopped)."""
    config = folder / "bench-llm.yaml"
    config.write_text(config_text(model_url), encoding="utf-8")
    data = folder / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ACF_DATABASE_URL", "ACF_REDIS_URL", "ACF_CONFIG", "ACF_DATA_DIR")
    }
    env.update({KEY_ENV: "bench", "ACF_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
    common = ["--data-dir", str(data), "--config", str(config)]
    created = await asyncio.to_thread(run_acf, ["keys", "create", "--tenant", TENANT, *common], env)
    key = created.strip().splitlines()[0].strip()
    port = free_port()
    processes = Processes(folder, env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        processes.spawn("acf", ["serve", "--port", str(port), *common])
        await wait_ready(processes, base_url, [])
        yield base_url, key, processes
    finally:
        await asyncio.to_thread(processes.stop)


async def run(args: argparse.Namespace) -> LlmRun:
    settings: dict[str, Any] = {
        "samples": args.samples,
        "warmup": args.warmup,
        "ttft_ms": args.ttft_ms,
        "tokens_per_s": args.tokens_per_s,
        "answer_tokens": ANSWER_TOKENS,
        "pause_ms": args.pause_ms,
        "sessions": "a new one per acf sample (a web chat's first message)",
        "accumulation": "off",
    }
    load_start = os.getloadavg()[0]
    folder = args.logs or Path(tempfile.mkdtemp(prefix="acf-bench-llm-"))
    folder.mkdir(parents=True, exist_ok=True)
    evidence = Evidence(logs=str(folder / "acf.log"))
    answer = Answer(ANSWER)
    fake = FakeOpenAI(
        ttft_ms=args.ttft_ms, tokens_per_s=args.tokens_per_s, responder=lambda _: answer
    )
    samples: list[tuple[Sample, bool]] = []
    async with fake, acf_server(folder, fake.base_url) as (url, key, processes):
        sdk = SdkBaseline(fake.base_url, MODEL, SYSTEM_PROMPT)
        chat = WebChatClient(url, key, AGENT, args.timeout)
        try:
            for i in range(args.warmup + args.samples):
                warm = "warm-" if i < args.warmup else ""
                order = (False, True) if i % 2 == 0 else (True, False)
                for acf in order:
                    tag = f"{warm}{'acf' if acf else 'sdk'}-{i}"
                    sample = await _timed(sdk, chat, tag, acf, args.timeout)
                    if not warm:
                        samples.append((sample, acf))
                    await asyncio.sleep(args.pause_ms / 1000)
        finally:
            await sdk.aclose()
            await chat.aclose()
        await asyncio.sleep(0.2)  # acf's last lines reach its log
        processes.check_alive()
        evidence.log_problems = [line for lines in processes.problems().values() for line in lines]
        requests = _requests_by_tag(fake.completions)
    return _figures(settings, samples, requests, evidence, (load_start, os.getloadavg()[0]))


async def _timed(
    sdk: SdkBaseline, chat: WebChatClient, tag: str, acf: bool, timeout_s: float
) -> Sample:
    text = f"{QUESTION} [{tag}]"
    try:
        async with asyncio.timeout(timeout_s):
            if acf:
                return await chat.sample(tag, f"customer-{tag}", text)
            return await sdk.sample(tag, text)
    except TimeoutError:
        return Sample(tag, error=f"no answer within {timeout_s:g} s")


def _requests_by_tag(requests: Sequence[FakeRequest]) -> dict[str, ModelSide]:
    found: dict[str, list[FakeRequest]] = {}
    for r in requests:
        users = [m for m in r.messages if isinstance(m, dict) and m.get("role") == "user"]
        match = _TAG.search(str(users[-1].get("content"))) if users else None
        if match:
            found.setdefault(match.group(1), []).append(r)
    out: dict[str, ModelSide] = {}
    for tag, rs in found.items():
        ends = [r.ended_at for r in rs]
        ended = None if None in ends else max(e for e in ends if e is not None)
        out[tag] = ModelSide(len(rs), min(r.arrived_at for r in rs), ended)
    return out


def _figures(
    settings: dict[str, Any],
    samples: Sequence[tuple[Sample, bool]],
    requests: dict[str, ModelSide],
    evidence: Evidence,
    load: tuple[float, float],
) -> LlmRun:
    first_token = tokens(ANSWER)[0]
    baseline: dict[str, list[float]] = {}
    acf_figures: dict[str, list[float]] = {}
    lags: list[float] = []
    per_sample: dict[int, int] = {}
    for s, acf in samples:
        if s.error is not None or s.done is None:
            evidence.failed.append(f"{s.tag}: {s.error or 'no end'}")
            continue
        if s.text != ANSWER:
            evidence.wrong_text.append(f"{s.tag}: {s.text[:80]!r}")
        model = requests.get(s.tag)
        figures = sample_figures(s, model, acf)
        if acf:
            count = 0 if model is None else model.requests
            per_sample[count] = per_sample.get(count, 0) + 1
            lags.extend(s.draft_lag_ms)
            if s.first_text != first_token:
                evidence.late_first_draft += 1
                figures.pop("to first draft", None)
        for name, value in figures.items():
            (acf_figures if acf else baseline).setdefault(name, []).append(value)
    evidence.model_requests_per_acf_sample = per_sample
    return LlmRun(settings, baseline, acf_figures, lags, evidence, load)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m acf.bench.llm",
        description="acf's added latency to the first draft and to the delivered reply of "
        "its built-in llm agent, beside the openai SDK called directly, on a fake model.",
    )
    p.add_argument("--samples", type=int, default=100, help="timed answers per subject (100)")
    p.add_argument("--warmup", type=int, default=3, help="untimed pairs first (3)")
    p.add_argument("--ttft-ms", type=int, default=300, help="the model's time to first token")
    p.add_argument("--tokens-per-s", type=float, default=30.0, help="the model's pace (30)")
    p.add_argument("--pause-ms", type=int, default=50, help="between samples (50)")
    p.add_argument("--timeout", type=float, default=30.0, help="per sample, seconds (30)")
    p.add_argument("--logs", type=Path, default=None, help="acf's log and data (a kept temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from acf.logging import configure_logging

    p = parser()
    args = p.parse_args(argv)
    if args.samples < 1 or args.warmup < 0 or args.ttft_ms < 0 or args.tokens_per_s <= 0:
        p.error("expected --samples >= 1, --warmup >= 0, --ttft-ms >= 0, --tokens-per-s > 0")
    configure_logging("CRITICAL")
    print(
        f"measuring {args.samples} answers from the openai SDK and from acf, interleaved "
        f"(about {_minutes(args):.0f} min)…",
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
    if not result.evidence.correct:
        print("RUN INCORRECT: see the failed samples and model requests above")
        return 1
    return 0


def _minutes(args: argparse.Namespace) -> float:
    answer_s = float(args.ttft_ms) / 1000 + (ANSWER_TOKENS - 1) / float(args.tokens_per_s)
    pairs = int(args.samples) + int(args.warmup)
    return pairs * 2 * (answer_s + float(args.pause_ms) / 1000) / 60 + 0.2


if __name__ == "__main__":
    raise SystemExit(main())
