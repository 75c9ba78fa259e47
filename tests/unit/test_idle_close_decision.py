"""The idle-close decision (DESIGN §15), table-tested."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.idle_close import CloseDecision, Hold, SessionActivity, decide_close
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy

HOUR = 3_600_000
DAY = 24 * HOUR


def idle(**changes: object) -> SessionActivity:
    fields: dict[str, object] = {
        "open": True,
        "last_activity_ms": 1_000,
        "unconsumed": False,
        "live_turn": False,
    }
    fields.update(changes)
    return SessionActivity(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("activity", "timeout_ms", "now_ms", "expected"),
    [
        # Idle exactly the timeout: closes.
        (idle(), DAY, 1_000 + DAY, CloseDecision(True, None, 1_000, None)),
        (idle(), DAY, 5_000 + DAY, CloseDecision(True, None, 1_000, None)),
        # One millisecond short: not yet, due at the timeout.
        (idle(), DAY, 999 + DAY, CloseDecision(False, Hold.NOT_IDLE, 1_000, 1_000 + DAY)),
        # The channel's own timeout decides.
        (idle(), HOUR, 1_000 + HOUR, CloseDecision(True, None, 1_000, None)),
        # Closed already.
        (idle(open=False), DAY, 9 * DAY, CloseDecision(False, Hold.CLOSED, 1_000, None)),
        # Work left holds it, whatever the time.
        (idle(live_turn=True), DAY, 9 * DAY, CloseDecision(False, Hold.LIVE_TURN, 1_000, None)),
        (
            idle(unconsumed=True),
            DAY,
            9 * DAY,
            CloseDecision(False, Hold.UNCONSUMED, 1_000, None),
        ),
        (
            idle(replay_pending=True),
            DAY,
            9 * DAY,
            CloseDecision(False, Hold.REPLAY, 1_000, None),
        ),
        (
            idle(undelivered=True),
            DAY,
            9 * DAY,
            CloseDecision(False, Hold.UNDELIVERED, 1_000, None),
        ),
        # A live turn is named before unconsumed messages (the turn is what runs).
        (
            idle(live_turn=True, unconsumed=True),
            DAY,
            9 * DAY,
            CloseDecision(False, Hold.LIVE_TURN, 1_000, None),
        ),
        # A confirmation within its own timeout holds the session past the idle timeout...
        (
            idle(confirmation_expires_at_ms=2 * DAY),
            DAY,
            1_000 + DAY,
            CloseDecision(False, Hold.CONFIRMATION, 1_000, 2 * DAY),
        ),
        # ...until it expires (an expired confirmation never executes: it holds nothing).
        (
            idle(confirmation_expires_at_ms=2 * DAY),
            DAY,
            2 * DAY,
            CloseDecision(True, None, 1_000, None),
        ),
        # One that expires before the idle timeout changes nothing.
        (
            idle(confirmation_expires_at_ms=HOUR),
            DAY,
            999 + DAY,
            CloseDecision(False, Hold.NOT_IDLE, 1_000, 1_000 + DAY),
        ),
        (
            idle(confirmation_expires_at_ms=HOUR),
            DAY,
            1_000 + DAY,
            CloseDecision(True, None, 1_000, None),
        ),
    ],
)
def test_decide_close(
    activity: SessionActivity, timeout_ms: int, now_ms: int, expected: CloseDecision
) -> None:
    assert decide_close(activity, timeout_ms, now_ms) == expected


def test_default_idle_timeout_is_a_day_on_every_channel() -> None:
    assert {p.idle_timeout_s for p in DEFAULT_CHANNEL_POLICIES.values()} == {86_400}


@pytest.mark.parametrize("bad", [0, -1])
def test_idle_timeout_must_be_positive(bad: int) -> None:
    with pytest.raises(InvalidValue, match="idle_timeout_s"):
        ChannelPolicy(AccumulationMode.OFF, idle_timeout_s=bad)
