"""acf's processes for the distributed benchmark: one-off ``acf`` commands, and the API and
worker subprocesses (their output in log files, always stopped), awaited until ready.
"""

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 60.0


def acf_command() -> list[str]:
    return [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def run_acf(args: Sequence[str], env: dict[str, str]) -> str:
    """``acf <args>`` to its end; its stdout."""
    done = subprocess.run(
        [*acf_command(), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"acf {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Processes:
    """The API and worker subprocesses (and the floor's), their output in log files; always
    stopped."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self._folder = folder
        self._env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def spawn(self, label: str, args: Sequence[str], command: Sequence[str] = ()) -> None:
        """``acf <args>`` (or ``<command> <args>``), its output in ``<label>.log``."""
        log = self._folder / f"{label}.log"
        self.logs[label] = log
        with log.open("wb") as out:
            self.running[label] = subprocess.Popen(
                [*(command or acf_command()), *args],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        for label, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited with {process.returncode}: {self.tail(label)}")

    def tail(self, label: str, chars: int = 2000) -> str:
        return self.logs[label].read_text(errors="replace")[-chars:]

    def problems(self) -> dict[str, list[str]]:
        """Log lines that look like errors, per process."""
        out: dict[str, list[str]] = {}
        for label, log in self.logs.items():
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if any(w in line for w in ("ERROR", "Traceback", "CRITICAL", "Exception"))
            ]
            if lines:
                out[label] = lines[:20]
        return out

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(processes: Processes, base_url: str, workers: Sequence[str]) -> None:
    """Until the API answers ``/readyz`` and every worker logged that it runs."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while True:
            processes.check_alive()
            ready = False
            with contextlib.suppress(httpx.HTTPError):
                ready = (await http.get("/readyz")).status_code == 200
            running = all(
                "worker running" in processes.logs[w].read_text(errors="replace") for w in workers
            )
            if ready and running:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the processes did not start in {STARTUP_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)
