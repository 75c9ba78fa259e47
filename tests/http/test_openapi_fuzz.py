"""A bounded schemathesis run against the OpenAPI spec of a real `acf serve` process:
no generated request may get a 5xx, and responses must match the spec."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from tests.http.conftest import PEOPLE_PATHS, config, free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
EXAMPLES = int(os.environ.get("ACF_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "acf.yaml"
    path.write_text(yaml.safe_dump(config("100000/second")), encoding="utf-8")
    data = tmp / "data"
    port = free_port()
    proc = subprocess.Popen(
        [*ACF, "serve", "--config", str(path), "--data-dir", str(data), "--port", str(port)],
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
        # a key created by the CLI while the server holds the database
        created = subprocess.run(
            [
                *ACF,
                "keys",
                "create",
                "--tenant",
                "acme",
                "--config",
                str(path),
                "--data-dir",
                str(data),
            ],
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


def test_no_generated_request_gets_a_5xx(served: tuple[str, str]) -> None:
    base, key = served
    # The streams never end: they have their own tests (test_reads_and_streams.py). The
    # people-in-the-loop routes need an operator key: test_people_fuzz.py fuzzes them.
    schema = (
        schemathesis.openapi.from_url(f"{base}/openapi.json")
        .exclude(path_regex="stream$")
        .exclude(path_regex=PEOPLE_PATHS)
    )
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers={**(case.headers or {}), **headers})
            assert response.status_code < 500, f"{case.operation.label}: {response.text}"
            case.validate_response(response, excluded_checks=[ignored_auth])

        run()


def test_the_key_was_created_while_serving(served: tuple[str, str], tmp_path: Path) -> None:
    base, key = served
    assert httpx.get(f"{base}/v1/sessions", headers={"X-API-Key": key}).status_code == 200
