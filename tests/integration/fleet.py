"""A distributed acf for a test: ``acf serve --role api`` and ``--role worker`` processes
on a private PostgreSQL database (and a private Redis when given), each started the way an
operator starts one, its stderr in a log file of the test's directory.

``Fleet`` starts processes, kills one as a crash does (SIGKILL) and stops the rest with
SIGTERM at the end; ``eventually`` polls another process's work with a bound, never a
timing; ``make_key`` makes an API key with ``acf keys create``.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from acf.adapters.postgres.store import libpq_url
from tests.http.conftest import free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
WAIT_S = 30.0
"""How long a step may take at most: a bound, not a timing."""
POLL_S = 0.05


def acf_env(database: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of an acf process: no ``ACF_*`` of the caller's, the database (and
    Redis) given, warnings only in the logs, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    env["ACF_DATABASE_URL"] = libpq_url(database)
    env["ACF_LOG_LEVEL"] = "WARNING"
    if redis_url is not None:
        env["ACF_REDIS_URL"] = redis_url
    env.update(extra)
    return env


def make_key(config_path: Path, env: dict[str, str], tenant: str, scope: str, name: str) -> str:
    """A key made as an operator makes one: `acf keys create` (printed once, on stdout)."""
    done = subprocess.run(
        [*ACF, "keys", "create", "--tenant", tenant, "--name", name, "--scope", scope],
        env={**env, "ACF_CONFIG": str(config_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"({scope}) for tenant {tenant}" in done.stderr
    return done.stdout.strip()


async def eventually(what: str, done: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``done`` until it holds, at most ``WAIT_S``."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not await done():  # noqa: ASYNC110 - polling other processes' work
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S} s: {what}") from None


class Fleet:
    """The acf processes of one test, all on one configuration file and environment."""

    def __init__(self, config_path: Path, env: dict[str, str], logs: Path) -> None:
        self.config_path = config_path
        self.env = env
        self._logs = logs
        self.processes: list[subprocess.Popen[str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _spawn(self, role: str, log_path: Path) -> subprocess.Popen[str]:
        args = ["--port", str(self.port)] if role == "api" else []
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*ACF, "serve", "--config", str(self.config_path), "--role", role, *args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.processes.append(process)
        return process

    async def start(self, role: str) -> subprocess.Popen[str]:
        """Start an ``api`` (on ``port``) or a ``worker`` and return once it says it runs."""
        log_path = self._logs / f"{role}-{len(self.processes)}.log"
        process = self._spawn(role, log_path)
        marker = "acf is serving" if role == "api" else "acf worker running"
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT_S)
        assert marker in line, (line, log_path.read_text())
        return process

    def kill(self, process: subprocess.Popen[str]) -> None:
        """A crash: SIGKILL, no shutdown of any kind."""
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@asynccontextmanager
async def fleet(
    config_path: Path, env: dict[str, str], logs: Path, workers: int = 1
) -> AsyncIterator[Fleet]:
    """An API process and ``workers`` workers, stopped at the end."""
    running = Fleet(config_path, env, logs)
    try:
        await running.start("api")
        for _ in range(workers):
            await running.start("worker")
        yield running
    finally:
        running.stop()
