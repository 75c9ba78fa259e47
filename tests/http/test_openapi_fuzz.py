"""A bounded schemathesis run against the OpenAPI spec of a real `acf serve` process:
no generated request may get a 5xx, and responses must match the spec."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from tests.http.conftest import PEOPLE_PATHS
from tests.http.served import serve_with_key

EXAMPLES = int(os.environ.get("ACF_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, an api key of acme's) of an `acf serve` process."""
    folder = tmp_path_factory.mktemp("fuzz")
    with serve_with_key(folder, scope="api", name="api") as served:
        yield served


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
