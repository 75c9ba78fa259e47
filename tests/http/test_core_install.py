"""The demo needs only acf's core install: `acf serve` on the embedded backend runs, takes a
message and stops cleanly with the extras' libraries (PostgreSQL, Redis, SMTP) blocked in
its interpreter, as if they were not installed: nothing on its path imports them."""

import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx

from tests.http.conftest import free_port

EXTRAS_LIBRARIES = ["psycopg", "psycopg_pool", "redis", "aiosmtplib"]
READY = "Press Ctrl+C to stop."
HANG_S = 600
"""Only a hung process takes this long."""


def test_the_demo_serves_without_the_extras(tmp_path: Path) -> None:
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in EXTRAS_LIBRARIES)
    code = f"import sys\n{blocked}from acf.entrypoints.cli import main\nmain()\n"
    port = free_port()
    data = tmp_path / "data"
    command = [sys.executable, "-c", code, "serve", "--data-dir", str(data), "--port", str(port)]
    with (tmp_path / "stderr").open("w+") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            out = []  # until it says it listens, or its output ends (it exited)
            for line in iter(proc.stdout.readline, ""):
                out.append(line)
                if line.strip() == READY:
                    break
            assert READY + "\n" in out, f"exited before it was ready: {out} {err_text(err)}"
            base = f"http://127.0.0.1:{port}"
            key = (data / "demo-api-key").read_text().strip()
            r = httpx.post(
                f"{base}/v1/messages",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "agent": "support",
                    "customer": "eve",
                    "client_message_id": "1",
                    "text": "hi",
                },
            )
            assert r.status_code == 202
            assert httpx.get(f"{base}/openapi.json").status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=HANG_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=HANG_S)
            if proc.stdout is not None:
                proc.stdout.close()
        assert "Traceback" not in err_text(err)


def err_text(err: IO[str]) -> str:
    err.seek(0)
    return err.read()
