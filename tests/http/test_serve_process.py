"""`acf serve` as a real process: the demo on a fresh data directory, its key, a clean stop
on SIGTERM (runtime and store closed), a restart keeping the key, and a taken port.

The tests wait for the process's own readiness signal, the announcement it prints once it
listens, rather than polling within a fixed budget that a loaded machine can miss; the
long timeout only guards against a hang."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import httpx

from tests.http.conftest import free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
READY = "Press Ctrl+C to stop."
"""The last line of what `acf serve` prints once it listens (after its URLs)."""
HANG_S = 600
"""Only a hung process takes this long: a slow start is waited for, whatever its pace."""


class Served:
    """A running `acf serve`, its output read as it comes (so a full pipe never blocks it)."""

    def __init__(self, data: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*ACF, "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.ready = threading.Event()
        """Set on the readiness line, or when the output ends (the process exited)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out, True)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False)),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str], signals: bool) -> None:
        for line in stream:
            into.append(line)
            if signals and line.strip() == READY:
                self.ready.set()
        if signals:
            self.ready.set()

    def output(self) -> str:
        return f"stdout:\n{''.join(self.out)}\nstderr:\n{''.join(self.err)}"

    def wait_ready(self) -> None:
        """Until the process says it listens; fails with its output if it exits first."""
        if not self.ready.wait(HANG_S):
            self.proc.kill()
            self.finish()
            raise AssertionError(f"acf serve hung for {HANG_S} s:\n{self.output()}")
        if READY + "\n" not in self.out:
            self.finish()
            raise AssertionError(
                f"acf serve exited ({self.proc.returncode}) before it was ready:\n{self.output()}"
            )

    def finish(self) -> tuple[int, str, str]:
        """Wait for the process to end: its exit code, stdout and stderr."""
        code = self.proc.wait(timeout=HANG_S)
        for reader in self._readers:
            reader.join(timeout=HANG_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code, "".join(self.out), "".join(self.err)

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()


def test_serve_the_demo_stop_cleanly_and_restart_with_the_same_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    served = Served(data, port)
    try:
        served.wait_ready()
    except BaseException:
        served.proc.kill()
        served.finish()
        raise
    key = (data / "demo-api-key").read_text().strip()
    assert (data / "demo-api-key").stat().st_mode & 0o777 == 0o600
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/messages",
        headers={"Authorization": f"Bearer {key}"},
        json={"agent": "support", "customer": "eve", "client_message_id": "1", "text": "hi"},
    )
    assert r.status_code == 202
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    code, out, err = served.stop()
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/?key={key}" in out
    assert "acf stopped: the runtime and the store are closed." in out

    again = Served(data, port)
    again.wait_ready()
    code, out, err = again.stop()
    assert code == 0, err
    assert f"demo API key (tenant demo): {key}" in out  # kept, not replaced


def test_a_taken_port_is_an_error_without_announcing_urls(tmp_path: Path) -> None:
    port = free_port()
    first = Served(tmp_path / "one", port)
    try:
        first.wait_ready()
        second = Served(tmp_path / "two", port)
        code, out, err = second.finish()
        assert code == 1
        assert "web chat:" not in out and "cannot listen on" in err and "in use" in err
    finally:
        first.stop()
