"""The load test's processes: the fake model, the fake agent service and ``acf serve``
(embedded, a fresh data directory), each on a free loopback port, their output in log
files; and the reading of a process's memory and CPU time from ``/proc``.

acf's configuration: one tenant with one web agent of ``kind: router``: route ``direct``
(``kind: llm``, the default and the fallback) and route ``agent`` (``kind:
agent_service``), rule ``{route: agent, commands: ["/agent"]}``; the web channel's
accumulation is acf's default. The tenant's message rate limit is raised
(``Pace.rate_limit``): the default 20/second is one customer's scale, not fifty's. The
keys are secret references, their values in the processes' environment only.
"""

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from acf.bench.load_report import ProcessSample
from acf.bench.processes import Processes, free_port, run_acf, wait_ready

TENANT = "load"
AGENT = "web"
MODEL = "fake-model"
PROFILE = "support"
LLM_KEY_ENV = "ACF_LOAD_LLM_KEY"
AGENT_KEY_ENV = "ACF_LOAD_AGENT_KEY"
FAKE_AGENT_KEY_ENV = "ACF_FAKE_AGENT_API_KEY"
SYSTEM_PROMPT = "You are the support agent of a web shop. Answer in one short paragraph."
ANSWER = (
    "Thanks for your patience. Your order left our warehouse yesterday and should reach "
    "you within two working days. You can follow the parcel with the tracking link in the "
    "confirmation email, and I can change the delivery address if you tell me the new one."
)
"""The fake model's answer to every request (about 50 tokens)."""
_OWN_ENV = ("ACF_DATABASE_URL", "ACF_REDIS_URL", "ACF_CONFIG", "ACF_DATA_DIR")


def config_text(llm_url: str, agent_url: str, rate_limit: str) -> str:
    """The configuration ``acf serve`` runs: one tenant, one router agent."""
    return (
        "version: 1\n"
        "tenants:\n"
        f"  {TENANT}:\n"
        f"    limits: {{accepted_messages: {json.dumps(rate_limit)}}}\n"
        "    agents:\n"
        f"      {AGENT}:\n"
        "        pipeline:\n"
        "          kind: router\n"
        "          default: direct\n"
        "          fallback: direct\n"
        '          rules: [{route: agent, commands: ["/agent"]}]\n'
        "          routes:\n"
        "            direct:\n"
        "              kind: llm\n"
        f"              model: {MODEL}\n"
        f"              base_url: {llm_url}\n"
        f"              api_key: ${{{LLM_KEY_ENV}}}\n"
        f"              system_prompt: {json.dumps(SYSTEM_PROMPT)}\n"
        "            agent:\n"
        "              kind: agent_service\n"
        f"              base_url: {agent_url}\n"
        f"              profile: {PROFILE}\n"
        f"              api_key: ${{{AGENT_KEY_ENV}}}\n"
    )


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the fakes answer, and the tenant's message rate limit."""

    ttft_ms: int = 1000
    tokens_per_s: float = 30.0
    agent_first_event_ms: int = 800
    agent_chunk_ms: int = 200
    agent_chunks: int = 15
    rate_limit: str = "500/second"


@dataclass(frozen=True, slots=True)
class Servers:
    base_url: str
    key: str
    acf_pid: int
    processes: Processes


def _environment(agent_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
    env.update(
        {
            LLM_KEY_ENV: "load",
            AGENT_KEY_ENV: agent_key,
            FAKE_AGENT_KEY_ENV: agent_key,
            "ACF_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.asynccontextmanager
async def servers(folder: Path, pace: Pace) -> AsyncIterator[Servers]:
    """The fake model, the fake agent service and ``acf serve`` over a fresh data
    directory in ``folder``, ready; always stopped."""
    env = _environment(secrets.token_urlsafe(16))
    processes = Processes(folder, env)
    llm_port, agent_port, acf_port = free_port(), free_port(), free_port()
    try:
        processes.spawn(
            "fake-llm",
            [
                *("--port", str(llm_port), "--ttft-ms", str(pace.ttft_ms)),
                *("--tokens-per-s", str(pace.tokens_per_s), "--answer", ANSWER),
            ],
            command=[sys.executable, "-m", "acf.testing.fake_openai_server"],
        )
        processes.spawn(
            "fake-agent",
            [
                *("--port", str(agent_port), "--think", "--chunks", str(pace.agent_chunks)),
                *("--first-event-ms", str(pace.agent_first_event_ms)),
                *("--chunk-ms", str(pace.agent_chunk_ms)),
            ],
            command=[sys.executable, "-m", "acf.testing.fake_agent_service_server"],
        )
        config = folder / "load.yaml"
        llm_url, agent_url = f"http://127.0.0.1:{llm_port}/v1", f"http://127.0.0.1:{agent_port}"
        config.write_text(config_text(llm_url, agent_url, pace.rate_limit), encoding="utf-8")
        common = ["--data-dir", str(folder / "data"), "--config", str(config)]
        create = ["keys", "create", "--tenant", TENANT, *common]
        created, _ = await asyncio.gather(
            asyncio.to_thread(run_acf, create, env), _listening(processes, (llm_port, agent_port))
        )
        key = created.strip().splitlines()[0].strip()
        base_url = f"http://127.0.0.1:{acf_port}"
        processes.spawn("acf", ["serve", "--port", str(acf_port), *common])
        await wait_ready(processes, base_url, [])
        yield Servers(base_url, key, processes.running["acf"].pid, processes)
    finally:
        await asyncio.to_thread(processes.stop)


async def _listening(processes: Processes, ports: Sequence[int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    for port in ports:
        while True:
            processes.check_alive()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on port {port}") from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            break


def read_process(pid: int, at_s: float, conversations: int) -> ProcessSample:
    """Process ``pid``'s resident memory and CPU time now (Linux ``/proc``)."""
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    # After the command name (which may hold spaces): state is field 3, utime and stime 14-15.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    cpu_s = ticks / os.sysconf("SC_CLK_TCK")
    return ProcessSample(round(at_s, 1), rss_kb / 1024, cpu_s, conversations)
