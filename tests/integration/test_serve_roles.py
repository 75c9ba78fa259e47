"""`acf serve --role`: which processes need PostgreSQL, and how a worker starts and stops."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate
from tests.integration.services import require_postgres, temporary_database

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ACF, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    env.update(extra)
    return env


@pytest.fixture
def database() -> Iterator[str]:
    """An empty database of the test's own (a module's would be upgraded by whichever test
    ran first, and a schema behind could not be refused)."""
    require_postgres()
    with temporary_database() as url:
        yield libpq_url(url)


def test_api_and_worker_roles_need_a_database(tmp_path: Path) -> None:
    for role in ("api", "worker"):
        done = _run("serve", "--role", role, "--data-dir", str(tmp_path), env=_env())
        assert done.returncode == 2
        assert f"--role {role} needs --database-url" in done.stderr
    done = _run("serve", "--role", "batch", "--data-dir", str(tmp_path), env=_env())
    assert done.returncode == 2 and "expected one of api, worker, all" in done.stderr


def test_a_worker_refuses_a_schema_behind_and_stops_cleanly_on_sigterm(database: str) -> None:
    behind = _run("serve", "--role", "worker", env=_env(ACF_DATABASE_URL=database))
    assert behind.returncode == 1
    assert "acf db upgrade" in behind.stderr

    upgraded = _run("db", "upgrade", env=_env(ACF_DATABASE_URL=database))
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {migrate.head_revision()}" in upgraded.stdout

    worker = subprocess.Popen(
        [*ACF, "serve", "--role", "worker"],
        env=_env(ACF_DATABASE_URL=database),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        deadline = time.monotonic() + 30
        first = worker.stdout.readline()
        assert "acf worker running as worker over postgresql://" in first, first
        assert time.monotonic() < deadline
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "finishing the turns in hand" in out
    assert "the runtime and the store are closed" in out


def test_a_worker_serves_its_metrics_and_health_on_the_metrics_port(database: str) -> None:
    upgraded = _run("db", "upgrade", env=_env(ACF_DATABASE_URL=database))
    assert upgraded.returncode == 0, upgraded.stderr
    worker = subprocess.Popen(
        [*ACF, "serve", "--role", "worker", "--metrics-port", "0"],
        env=_env(ACF_DATABASE_URL=database),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert "acf worker running" in worker.stdout.readline()
        line = worker.stdout.readline()
        assert "metrics: http://127.0.0.1:" in line, line
        base = line.split("metrics: ")[1].split("/metrics")[0]
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "acf_" in metrics.text and metrics.headers["content-type"].startswith("text/plain")
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert httpx.get(f"{base}/v1/sessions", timeout=10).status_code == 404  # no API here
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "the runtime and the store are closed" in out
