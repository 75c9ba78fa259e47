"""A bounded schemathesis run of the people-in-the-loop routes (the inbox, handoffs, notes,
the block list, the holds, the abuse summary) with an operator key, against a real
``acf serve``: no generated request may get a 5xx, and every response must match the spec
(a schema-valid request may be refused: a session that does not exist, a block already
there)."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.http.conftest import PEOPLE_PATHS
from tests.http.served import serve_with_key
from tests.http.test_openapi_fuzz import EXAMPLES


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, an operator key of acme's) of an `acf serve` process."""
    with serve_with_key(
        tmp_path_factory.mktemp("people-fuzz"), scope="operator", name="ana"
    ) as served:
        yield served


@pytest.mark.timeout(300)  # about 100 s alone (13 routes); more when it shares the machine
def test_no_generated_people_request_gets_a_5xx(served: tuple[str, str]) -> None:
    base, key = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json").include(path_regex=PEOPLE_PATHS)
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 13, [op.label for op in operations]

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
            # a schema-valid request may name a session that does not exist (404, by design)
            excluded = [ignored_auth, positive_data_acceptance]
            case.validate_response(response, excluded_checks=excluded)

        run()
