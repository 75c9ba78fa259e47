"""Table tests of the window-close rule (DESIGN §5), one row per signal."""

import pytest

from acf.domain.accumulation import (
    CloseReason as R,
)
from acf.domain.accumulation import (
    Typing,
    WindowDecision,
    WindowMessage,
    decide,
    text_shape,
)
from acf.domain.policy import AccumulationMode, ChannelPolicy

ADAPTIVE = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000)
FIXED = ChannelPolicy(AccumulationMode.FIXED, 1500, 1500, 6000, 0)
OFF = ChannelPolicy(AccumulationMode.OFF)


def m(
    at: int, text: str | None = "where is my order #12345", button: bool = False
) -> WindowMessage:
    return WindowMessage(received_at_ms=at, text=text, is_button=button)


CASES = [
    # id, policy, messages, typing, pending confirmation, expected (close_at, reason)
    ("off closes at once", OFF, [m(0)], None, False, (0, R.OFF)),
    ("fixed: window after last", FIXED, [m(0), m(1000)], None, False, (2500, R.FIXED)),
    ("fixed: capped", FIXED, [m(0), m(5000)], None, False, (6000, R.CAP)),
    ("plain text: default window", ADAPTIVE, [m(0)], None, False, (1200, R.DEFAULT)),
    ("question closes early", ADAPTIVE, [m(0, "can you help?")], None, False, (400, R.COMPLETE)),
    (
        "full stop closes early",
        ADAPTIVE,
        [m(0, "I need a refund.")],
        None,
        False,
        (400, R.COMPLETE),
    ),
    ("exclamation closes early", ADAPTIVE, [m(0, "it's broken!")], None, False, (400, R.COMPLETE)),
    ("greeting alone waits", ADAPTIVE, [m(0, "Hi")], None, False, (2400, R.INCOMPLETE)),
    ("very short text waits", ADAPTIVE, [m(0, "so")], None, False, (2400, R.INCOMPLETE)),
    ("trailing comma waits", ADAPTIVE, [m(0, "my order,")], None, False, (2400, R.INCOMPLETE)),
    ("ellipsis waits", ADAPTIVE, [m(0, "well...")], None, False, (2400, R.INCOMPLETE)),
    ("colon waits", ADAPTIVE, [m(0, "the items are:")], None, False, (2400, R.INCOMPLETE)),
    (
        "conjunction waits",
        ADAPTIVE,
        [m(0, "I want to cancel and")],
        None,
        False,
        (2400, R.INCOMPLETE),
    ),
    (
        "spanish conjunction",
        ADAPTIVE,
        [m(0, "quiero cancelar pero")],
        None,
        False,
        (2400, R.INCOMPLETE),
    ),
    (
        "button closes now",
        ADAPTIVE,
        [m(0), m(300, None, button=True)],
        None,
        False,
        (300, R.BUTTON),
    ),
    (
        "lone yes to pending confirmation",
        ADAPTIVE,
        [m(0, "yes")],
        None,
        True,
        (0, R.CONFIRMATION_ANSWER),
    ),
    (
        "lone 'sí' to pending confirmation",
        ADAPTIVE,
        [m(0, "Sí!")],
        None,
        True,
        (0, R.CONFIRMATION_ANSWER),
    ),
    ("yes without confirmation waits", ADAPTIVE, [m(0, "yes")], None, False, (2400, R.INCOMPLETE)),
    (
        "yes plus more is not lone",
        ADAPTIVE,
        [m(0, "yes"), m(500, "and also cancel my sub.")],
        None,
        True,
        (900, R.COMPLETE),
    ),
    ("typing holds the window", ADAPTIVE, [m(0)], Typing(True, 1000), False, (4000, R.CAP)),
    ("typing holds within grace", ADAPTIVE, [m(0)], Typing(True, 100), False, (4000, R.CAP)),
    (
        "typing within cap",
        ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 10000, 3000),
        [m(0)],
        Typing(True, 1000),
        False,
        (4000, R.TYPING),
    ),
    (
        "typing before last message is stale",
        ADAPTIVE,
        [m(500)],
        Typing(True, 100),
        False,
        (1700, R.DEFAULT),
    ),
    (
        "typing stopped shortens",
        ADAPTIVE,
        [m(0)],
        Typing(False, 200),
        False,
        (600, R.TYPING_STOPPED),
    ),
    (
        "typing stopped after a held window: short grace",
        ADAPTIVE,
        [m(0)],
        Typing(False, 2000),
        False,
        (2400, R.TYPING_STOPPED),
    ),
    (
        "typing stopped never lengthens",
        ADAPTIVE,
        [m(0, "ok?")],
        Typing(False, 100),
        False,
        (400, R.COMPLETE),
    ),
    ("max cap from first message", ADAPTIVE, [m(0), m(3000, "and")], None, False, (4000, R.CAP)),
    ("media only: default", ADAPTIVE, [m(0, None)], None, False, (1200, R.DEFAULT)),
]


@pytest.mark.parametrize(
    ("policy", "messages", "typing", "pending", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    policy: ChannelPolicy,
    messages: list[WindowMessage],
    typing: Typing | None,
    pending: bool,
    expected: tuple[int, R],
) -> None:
    assert decide(policy, messages, typing, pending, now_ms=0) == WindowDecision(*expected)


def test_an_empty_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one message"):
        decide(ADAPTIVE, [], None, False, 0)


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("Where is my order?", R.COMPLETE),
        ("Thanks.", R.COMPLETE),
        ("hello", R.INCOMPLETE),
        ("Bom dia!", R.INCOMPLETE),
        ("I was wondering", R.DEFAULT),
        ("Je veux annuler et", R.INCOMPLETE),
        ("weil", R.INCOMPLETE),
        ("ok?", R.COMPLETE),
    ],
)
def test_text_shape(text: str, shape: R) -> None:
    assert text_shape(text) is shape
