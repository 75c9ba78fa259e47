"""`acf serve` as a real process: the demo on a fresh data directory, its key, a clean stop
on SIGTERM (runtime and store closed), a restart keeping the key, and a taken port."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.http.conftest import free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def start(data: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ACF, "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("acf serve did not become healthy")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_serve_the_demo_stop_cleanly_and_restart_with_the_same_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc = start(data, port)
    try:
        wait_healthy(proc, port)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    key = (data / "demo-api-key").read_text().strip()
    assert (data / "demo-api-key").stat().st_mode & 0o777 == 0o600
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/messages",
        headers={"Authorization": f"Bearer {key}"},
        json={"agent": "support", "customer": "eve", "client_message_id": "1", "text": "hi"},
    )
    assert r.status_code == 202
    code, out, err = stop(proc)
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/?key={key}" in out
    assert "acf stopped: the runtime and the store are closed." in out

    again = start(data, port)
    wait_healthy(again, port)
    code, out, err = stop(again)
    assert code == 0, err
    assert f"demo API key (tenant demo): {key}" in out  # kept, not replaced


def test_a_taken_port_is_an_error_without_announcing_urls(tmp_path: Path) -> None:
    port = free_port()
    first = start(tmp_path / "one", port)
    try:
        wait_healthy(first, port)
        second = start(tmp_path / "two", port)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "web chat:" not in out and "cannot listen on" in err and "in use" in err
    finally:
        stop(first)
