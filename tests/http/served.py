"""An ``acf serve`` process of the tests' configuration, and a key of acme's made by the CLI
while it holds the database: the fuzz tests' server."""

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.http.conftest import config, free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


@contextmanager
def serve_with_key(
    folder: Path, scope: str = "api", name: str = "api"
) -> Iterator[tuple[str, str]]:
    """(base URL, a key of acme's with ``scope``) of an ``acf serve`` on a free port, its
    configuration and data in ``folder``; stopped on exit."""
    path = folder / "acf.yaml"
    path.write_text(yaml.safe_dump(config("100000/second")), encoding="utf-8")
    common = ["--config", str(path), "--data-dir", str(folder / "data")]
    port = free_port()
    proc = subprocess.Popen(
        [*ACF, "serve", "--port", str(port), *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"acf serve did not start: {proc.stderr.read() if proc.stderr else ''!r}"
                )
            time.sleep(0.1)
        created = subprocess.run(
            [*ACF, "keys", "create", "--tenant", "acme", "--name", name, "--scope", scope, *common],
            capture_output=True,
            text=True,
            check=True,
        )
        yield base, created.stdout.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
