"""The process-wide availability of agent service endpoints, without polling: one breaker
per endpoint (whatever the URL's spelling, never holding a credential), an open circuit
makes the endpoint unusable, and ``snapshot`` shows what ``/readyz`` reports."""

from acf.pipelines.agent_service.availability import (
    Availability,
    EndpointHealth,
    shared_availability,
)
from acf.pipelines.llm.breaker import BreakerSettings, CircuitState

NOW = 1_700_000_000_000
ONE_FAILURE = BreakerSettings(failures=1, window_ms=60_000, open_ms=30_000)


def test_one_breaker_per_endpoint_whatever_the_spelling() -> None:
    availability = Availability()
    first = availability.breaker("http://Agents.example:80/", ONE_FAILURE)
    assert availability.breaker("http://agents.example", BreakerSettings()) is first
    assert first.settings == ONE_FAILURE  # the first caller's settings stand
    assert availability.breaker("http://agents.example:8080") is not first


def test_an_open_circuit_makes_the_endpoint_unusable_until_its_probe() -> None:
    availability = Availability()
    url = "http://agents.example"
    assert availability.usable(url, NOW)  # never seen: usable
    breaker = availability.breaker(url, ONE_FAILURE)
    assert breaker.record_failure(NOW) is CircuitState.OPEN
    assert not availability.usable(url, NOW + 29_999)
    assert availability.usable(url, NOW + 30_000)  # half-open: the probe may go
    assert not availability.usable("http://agents.example:80/", NOW + 1)


def test_the_snapshot_names_endpoints_without_credentials() -> None:
    availability = Availability()
    availability.breaker("https://user:pw-9f2c@agents.example/base/?q=1", ONE_FAILURE)
    availability.breaker("http://127.0.0.1:8700").record_failure(NOW)
    assert availability.snapshot(NOW) == [
        EndpointHealth("http://127.0.0.1:8700", CircuitState.CLOSED, None, None, None),
        EndpointHealth("https://agents.example:443/base", CircuitState.CLOSED, None, None, None),
    ]
    assert "pw-9f2c" not in repr(availability.snapshot(NOW))


def test_the_shared_instance_is_one_per_process() -> None:
    assert shared_availability() is shared_availability()
