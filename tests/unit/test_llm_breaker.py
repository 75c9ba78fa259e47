"""The per-endpoint circuit breaker: 5 failures in 60 s open it for 30 s, then one probe."""

import pytest

from acf.pipelines.llm.breaker import (
    BreakerBoard,
    BreakerSettings,
    CircuitBreaker,
    CircuitState,
    endpoint_key,
    shared_board,
)

CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Step = tuple[str, int, object]
"""(operation, at ms, what it returns): ``allow`` returns (allowed, change); ``fail`` and
``ok`` return the change; ``abandon`` returns None; ``state`` returns the state."""


DEFAULTS = BreakerSettings()


def run(steps: list[Step], settings: BreakerSettings = DEFAULTS) -> None:
    breaker = CircuitBreaker(settings)
    for number, (operation, at, expected) in enumerate(steps):
        if operation == "allow":
            got: object = breaker.allow(at)
        elif operation == "fail":
            got = breaker.record_failure(at)
        elif operation == "ok":
            got = breaker.record_success(at)
        elif operation == "abandon":
            breaker.record_abandoned()
            got = None
        else:
            got = breaker.state(at)
        assert got == expected, f"step {number}: {operation} at {at}"


FIVE_FAILURES: list[Step] = [
    ("fail", 0, None),
    ("fail", 10_000, None),
    ("fail", 20_000, None),
    ("fail", 30_000, None),
    ("state", 30_000, CLOSED),
    ("allow", 30_001, (True, None)),
    ("fail", 40_000, OPEN),
]

CASES: dict[str, list[Step]] = {
    "five failures open it, then exactly one probe; its success closes": [
        *FIVE_FAILURES,
        ("allow", 40_001, (False, None)),
        ("state", 69_999, OPEN),
        ("allow", 69_999, (False, None)),
        ("state", 70_000, HALF),
        ("allow", 70_000, (True, HALF)),
        ("allow", 70_001, (False, None)),  # the probe is out: nobody else
        ("ok", 70_500, CLOSED),
        ("allow", 70_501, (True, None)),
        ("fail", 70_600, None),  # counting starts afresh
    ],
    "a failed probe opens it again for 30 s": [
        *FIVE_FAILURES,
        ("allow", 70_000, (True, HALF)),
        ("fail", 70_100, OPEN),
        ("allow", 100_099, (False, None)),
        ("allow", 100_100, (True, HALF)),
        ("ok", 100_200, CLOSED),
    ],
    "failures older than 60 s do not count": [
        ("fail", 0, None),
        ("fail", 20_000, None),
        ("fail", 40_000, None),
        ("fail", 59_999, None),
        ("fail", 60_000, None),  # the one at 0 left the window
        ("fail", 80_001, None),  # and the one at 20 000
        ("fail", 90_000, OPEN),
    ],
    "a success in between starts the count again": [
        ("fail", 0, None),
        ("fail", 1, None),
        ("fail", 2, None),
        ("fail", 3, None),
        ("ok", 4, None),
        ("fail", 5, None),
        ("fail", 6, None),
        ("fail", 7, None),
        ("fail", 8, None),
        ("state", 8, CLOSED),
        ("fail", 9, OPEN),
    ],
    "a failure while open (sent before it opened) does not extend it": [
        *FIVE_FAILURES,
        ("fail", 50_000, None),
        ("allow", 70_000, (True, HALF)),
    ],
    "a cancelled probe lets the next request probe": [
        *FIVE_FAILURES,
        ("allow", 70_000, (True, HALF)),
        ("abandon", 70_010, None),
        ("allow", 70_020, (True, None)),
        ("allow", 70_030, (False, None)),
        ("ok", 70_040, CLOSED),
    ],
    "a late success while open closes it: the endpoint answers": [
        *FIVE_FAILURES,
        ("ok", 41_000, CLOSED),
        ("allow", 41_001, (True, None)),
    ],
    "abandoning while closed changes nothing": [
        ("allow", 0, (True, None)),
        ("abandon", 1, None),
        ("state", 1, CLOSED),
        ("ok", 2, None),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_breaker(name: str) -> None:
    run(CASES[name])


def test_thresholds_are_settings() -> None:
    settings = BreakerSettings(failures=2, window_ms=1_000, open_ms=500)
    run(
        [
            ("fail", 0, None),
            ("fail", 1_000, None),  # the first left the window
            ("fail", 1_500, OPEN),
            ("allow", 1_999, (False, None)),
            ("allow", 2_000, (True, HALF)),
            ("fail", 2_001, OPEN),
            ("allow", 2_501, (True, HALF)),
        ],
        settings,
    )


@pytest.mark.parametrize(
    ("base_url", "key"),
    [
        ("http://127.0.0.1:8100/v1", "http://127.0.0.1:8100/v1"),
        ("http://127.0.0.1:8100/v1/", "http://127.0.0.1:8100/v1"),
        ("https://API.OpenAI.com/v1", "https://api.openai.com:443/v1"),
        ("http://localhost/v1", "http://localhost:80/v1"),
        ("https://user:sk-secret@proxy.example/v1?key=sk-secret#x", "https://proxy.example:443/v1"),
        ("http://[::1]:11434/v1", "http://[::1]:11434/v1"),
        (
            "https://acme.openai.azure.com/openai/deployments/gpt4o?api-version=2024-06-01",
            "https://acme.openai.azure.com:443/openai/deployments/gpt4o",
        ),
    ],
)
def test_endpoint_key_keeps_no_credentials(base_url: str, key: str) -> None:
    assert endpoint_key(base_url) == key


def test_the_board_shares_one_breaker_per_endpoint() -> None:
    board = BreakerBoard(BreakerSettings(failures=1))
    first = board.breaker("http://a:80/v1")
    assert board.breaker("http://a:80/v1") is first
    assert board.breaker("http://b:80/v1") is not first
    assert first.settings.failures == 1
    first.record_failure(10)
    assert board.states(20) == {"http://a:80/v1": OPEN, "http://b:80/v1": CLOSED}
    assert shared_board() is shared_board()
