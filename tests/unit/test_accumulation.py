"""Table tests of the window-close rule (DESIGN §5, issue 23), one row per signal, and of
the text shapes it reads."""

from dataclasses import replace

import pytest

from acf.domain.accumulation import (
    CloseReason as R,
)
from acf.domain.accumulation import (
    Typing,
    WindowDecision,
    WindowMessage,
    decide,
)
from acf.domain.errors import InvalidValue
from acf.domain.pace import Pace
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.text_shapes import Shape, is_emoji, shape_of

ADAPTIVE = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000)
LENGTHENS = replace(ADAPTIVE, incomplete_window_ms=3000)
PACED = replace(ADAPTIVE, pace=True)
FIXED = ChannelPolicy(AccumulationMode.FIXED, 1500, 1500, 6000, 0)
OFF = ChannelPolicy(AccumulationMode.OFF)
FAST = Pace(samples=3, gap_ms=300.0, spread_ms=40.0)  # 300 + 2 * 40 = 380: min 400
SLOWER = Pace(samples=5, gap_ms=1500.0, spread_ms=400.0)  # window 2300
GREEN = Pace(samples=2, gap_ms=300.0, spread_ms=100.0)  # too few gaps


def m(
    at: int, text: str | None = "where is my order #12345", button: bool = False
) -> WindowMessage:
    return WindowMessage(received_at_ms=at, text=text, is_button=button)


CASES = [
    # id, policy, messages, typing, pending confirmation, pace, expected (close_at, reason)
    ("off closes at once", OFF, [m(0)], None, False, None, (0, R.OFF)),
    ("fixed: window after last", FIXED, [m(0), m(1000)], None, False, None, (2500, R.FIXED)),
    ("fixed: capped", FIXED, [m(0), m(5000)], None, False, None, (6000, R.CAP)),
    ("plain text: default window", ADAPTIVE, [m(0)], None, False, None, (1200, R.DEFAULT)),
    (
        "question closes early",
        ADAPTIVE,
        [m(0, "can you help?")],
        None,
        False,
        None,
        (400, R.COMPLETE),
    ),
    (
        "full stop closes early",
        ADAPTIVE,
        [m(0, "I need a refund.")],
        None,
        False,
        None,
        (400, R.COMPLETE),
    ),
    (
        "exclamation closes early",
        ADAPTIVE,
        [m(0, "it's broken!")],
        None,
        False,
        None,
        (400, R.COMPLETE),
    ),
    (
        "emoji at the end closes early",
        ADAPTIVE,
        [m(0, "I'll try that 🙂")],
        None,
        False,
        None,
        (400, R.COMPLETE),
    ),
    (
        "acknowledgement closes early",
        ADAPTIVE,
        [m(0, "ok")],
        None,
        False,
        None,
        (400, R.ACKNOWLEDGEMENT),
    ),
    (
        "emoji alone closes early",
        ADAPTIVE,
        [m(0, "👍")],
        None,
        False,
        None,
        (400, R.ACKNOWLEDGEMENT),
    ),
    (
        "emoticon alone closes early",
        ADAPTIVE,
        [m(0, ":D")],
        None,
        False,
        None,
        (400, R.ACKNOWLEDGEMENT),
    ),
    (
        "yes without confirmation: an ack",
        ADAPTIVE,
        [m(0, "yes")],
        None,
        False,
        None,
        (400, R.ACKNOWLEDGEMENT),
    ),
    ("greeting alone: plain window", LENGTHENS, [m(0, "Hi")], None, False, None, (1200, R.DEFAULT)),
    ("short text: plain window", LENGTHENS, [m(0, "so")], None, False, None, (1200, R.DEFAULT)),
    ("ellipsis: plain window", LENGTHENS, [m(0, "well...")], None, False, None, (1200, R.DEFAULT)),
    (
        "trailing comma waits",
        LENGTHENS,
        [m(0, "my order,")],
        None,
        False,
        None,
        (3000, R.INCOMPLETE),
    ),
    ("colon waits", LENGTHENS, [m(0, "the items are:")], None, False, None, (3000, R.INCOMPLETE)),
    (
        "conjunction waits",
        LENGTHENS,
        [m(0, "I want to cancel and")],
        None,
        False,
        None,
        (3000, R.INCOMPLETE),
    ),
    (
        "spanish conjunction",
        LENGTHENS,
        [m(0, "quiero cancelar pero")],
        None,
        False,
        None,
        (3000, R.INCOMPLETE),
    ),
    (
        "incomplete 0: no lengthening",
        ADAPTIVE,
        [m(0, "my order,")],
        None,
        False,
        None,
        (1200, R.INCOMPLETE),
    ),
    (
        "unfinished within the cap",
        LENGTHENS,
        [m(0), m(2000, "cancel it and")],
        None,
        False,
        None,
        (4000, R.CAP),
    ),
    (
        "button closes now",
        ADAPTIVE,
        [m(0), m(300, None, button=True)],
        None,
        False,
        None,
        (300, R.BUTTON),
    ),
    (
        "lone yes to pending confirmation",
        ADAPTIVE,
        [m(0, "yes")],
        None,
        True,
        None,
        (0, R.CONFIRMATION_ANSWER),
    ),
    (
        "lone 'sí' to pending confirmation",
        ADAPTIVE,
        [m(0, "Sí!")],
        None,
        True,
        None,
        (0, R.CONFIRMATION_ANSWER),
    ),
    (
        "yes plus more is not lone",
        ADAPTIVE,
        [m(0, "yes"), m(500, "and also cancel my sub.")],
        None,
        True,
        None,
        (900, R.COMPLETE),
    ),
    ("typing holds the window", ADAPTIVE, [m(0)], Typing(True, 1000), False, None, (4000, R.CAP)),
    ("typing holds within grace", ADAPTIVE, [m(0)], Typing(True, 100), False, None, (4000, R.CAP)),
    (
        "typing: the hold ends grace after the last signal",
        replace(ADAPTIVE, max_window_ms=10000, typing_grace_ms=3000),
        [m(0)],
        Typing(True, 4000),  # repeats of "started" move the latest signal on
        False,
        None,
        (7000, R.TYPING),
    ),
    (
        "typing within cap",
        replace(ADAPTIVE, max_window_ms=10000, typing_grace_ms=3000),
        [m(0)],
        Typing(True, 1000),
        False,
        None,
        (4000, R.TYPING),
    ),
    (
        "typing shorter than the planned window does not shorten it",
        replace(LENGTHENS, typing_grace_ms=1000),
        [m(0, "my order,")],
        Typing(True, 500),
        False,
        None,
        (3000, R.INCOMPLETE),
    ),
    (
        "typing before last message is stale",
        ADAPTIVE,
        [m(500)],
        Typing(True, 100),
        False,
        None,
        (1700, R.DEFAULT),
    ),
    (
        "the send's own stop: text rule",
        ADAPTIVE,
        [m(1000)],
        Typing(False, 1000),
        False,
        None,
        (2200, R.DEFAULT),
    ),
    (
        "the send's own stop, late",
        ADAPTIVE,
        [m(1000)],
        Typing(False, 1499),
        False,
        None,
        (2200, R.DEFAULT),
    ),
    (
        "an idle stop shortens",
        ADAPTIVE,
        [m(0)],
        Typing(False, 600),
        False,
        None,
        (1000, R.TYPING_STOPPED),
    ),
    (
        "typing stopped after a held window: short grace",
        ADAPTIVE,
        [m(0)],
        Typing(False, 2000),
        False,
        None,
        (2400, R.TYPING_STOPPED),
    ),
    (
        "typing stopped never lengthens",
        ADAPTIVE,
        [m(0)],
        Typing(False, 1000),
        False,
        None,
        (1200, R.DEFAULT),
    ),
    (
        "max cap from first message",
        LENGTHENS,
        [m(0), m(3000, "cancel it and")],
        None,
        False,
        None,
        (4000, R.CAP),
    ),
    ("media only: default", ADAPTIVE, [m(0, None)], None, False, None, (1200, R.DEFAULT)),
    (
        "a conjunction before an emoji waits",
        LENGTHENS,
        [m(0, "I will try and 😅")],
        None,
        False,
        None,
        (3000, R.INCOMPLETE),
    ),
    (
        "a lone conjunction before an emoji: plain window, not complete",
        LENGTHENS,
        [m(0, "because 🙏")],
        None,
        False,
        None,
        (1200, R.DEFAULT),
    ),
    (
        "a one-letter answer: plain window",
        LENGTHENS,
        [m(0, "a")],
        None,
        False,
        None,
        (1200, R.DEFAULT),
    ),
    ("a number is no emoticon", ADAPTIVE, [m(0, "83")], None, False, None, (1200, R.DEFAULT)),
    ("pace on: a fast customer", PACED, [m(0)], None, False, FAST, (400, R.PACE)),
    ("pace on: a slower customer", PACED, [m(0)], None, False, SLOWER, (2300, R.PACE)),
    ("pace on: too few gaps", PACED, [m(0)], None, False, GREEN, (1200, R.DEFAULT)),
    ("pace on: no pace yet", PACED, [m(0)], None, False, None, (1200, R.DEFAULT)),
    ("pace off: ignored", ADAPTIVE, [m(0)], None, False, SLOWER, (1200, R.DEFAULT)),
    (
        "pace: only for plain text",
        PACED,
        [m(0, "ok")],
        None,
        False,
        SLOWER,
        (400, R.ACKNOWLEDGEMENT),
    ),
    ("pace: within the cap", PACED, [m(0), m(2000)], None, False, SLOWER, (4000, R.CAP)),
    ("pace: typing still holds", PACED, [m(0)], Typing(True, 500), False, FAST, (4000, R.CAP)),
]


@pytest.mark.parametrize(
    ("policy", "messages", "typing", "pending", "pace", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    policy: ChannelPolicy,
    messages: list[WindowMessage],
    typing: Typing | None,
    pending: bool,
    pace: Pace | None,
    expected: tuple[int, R],
) -> None:
    decision = decide(policy, messages, typing, pending, now_ms=0, pace=pace)
    assert decision == WindowDecision(*expected)


def test_an_empty_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one message"):
        decide(ADAPTIVE, [], None, False, 0)


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        # acknowledgements, several languages, elongated, laughing, with emoji
        ("ok", Shape.ACKNOWLEDGEMENT),
        ("Okkk", Shape.ACKNOWLEDGEMENT),
        ("kk", Shape.ACKNOWLEDGEMENT),
        ("thx!", Shape.ACKNOWLEDGEMENT),
        ("Thanks.", Shape.ACKNOWLEDGEMENT),
        ("thank you so much", Shape.ACKNOWLEDGEMENT),
        ("ok got it", Shape.ACKNOWLEDGEMENT),
        ("oh ok", Shape.ACKNOWLEDGEMENT),
        ("yesss", Shape.ACKNOWLEDGEMENT),
        ("+1", Shape.ACKNOWLEDGEMENT),
        ("hahaha", Shape.ACKNOWLEDGEMENT),
        ("lol", Shape.ACKNOWLEDGEMENT),
        ("jajaja", Shape.ACKNOWLEDGEMENT),
        ("kkkkk", Shape.ACKNOWLEDGEMENT),
        ("rsrs", Shape.ACKNOWLEDGEMENT),
        ("Muchas gracias", Shape.ACKNOWLEDGEMENT),
        ("vale", Shape.ACKNOWLEDGEMENT),
        ("valeu", Shape.ACKNOWLEDGEMENT),
        ("merci beaucoup", Shape.ACKNOWLEDGEMENT),
        ("d'accord", Shape.ACKNOWLEDGEMENT),
        ("vielen Dank!", Shape.ACKNOWLEDGEMENT),
        ("alles klar", Shape.ACKNOWLEDGEMENT),
        ("thanks 🙏", Shape.ACKNOWLEDGEMENT),
        ("thanks:+1:", Shape.ACKNOWLEDGEMENT),
        ("👍🏻", Shape.ACKNOWLEDGEMENT),
        ("❤️", Shape.ACKNOWLEDGEMENT),
        (":)", Shape.ACKNOWLEDGEMENT),
        ("xD", Shape.ACKNOWLEDGEMENT),
        ("^^", Shape.ACKNOWLEDGEMENT),
        (":+1: :tada:", Shape.ACKNOWLEDGEMENT),
        (":3", Shape.ACKNOWLEDGEMENT),
        ("🇫🇷", Shape.ACKNOWLEDGEMENT),
        ("1️⃣", Shape.ACKNOWLEDGEMENT),
        ("©️", Shape.ACKNOWLEDGEMENT),  # with the emoji variation selector
        # not acknowledgements
        ("ok?", Shape.COMPLETE),
        ("ok so", Shape.DEFAULT),
        ("ok and", Shape.UNFINISHED),
        ("oh", Shape.DEFAULT),
        ("ok, but", Shape.UNFINISHED),
        ("yes,", Shape.UNFINISHED),
        ("ok thanks but where is my order", Shape.DEFAULT),
        ("bueno", Shape.DEFAULT),  # "well, ..." leads into more
        ("bon", Shape.DEFAULT),
        ("bitte", Shape.DEFAULT),  # "please ..." as often as "you're welcome"
        # numbers are not emoticons
        ("83", Shape.DEFAULT),
        ("my order number is 83", Shape.DEFAULT),
        ("see you at 8p", Shape.DEFAULT),
        ("8)", Shape.DEFAULT),
        ("8d", Shape.DEFAULT),
        ("=3", Shape.DEFAULT),
        # accents, vowel signs and text symbols are not emoji
        ("cafe\u0301", Shape.DEFAULT),  # "café" decomposed: e + combining acute
        ("ที่", Shape.DEFAULT),
        ("नहीं", Shape.DEFAULT),
        ("it is 25°", Shape.DEFAULT),
        ("Acme™", Shape.DEFAULT),
        ("made by Acme ©", Shape.DEFAULT),
        # unfinished
        ("the items are:", Shape.UNFINISHED),
        ("my order,", Shape.UNFINISHED),
        ("first; ", Shape.UNFINISHED),
        ("from -", Shape.UNFINISHED),
        ("Je veux annuler et", Shape.UNFINISHED),
        ("Ich will kündigen, weil", Shape.UNFINISHED),
        ("quiero cancelar y", Shape.UNFINISHED),
        ("quero cancelar e", Shape.UNFINISHED),
        ("I want a", Shape.UNFINISHED),
        # an unfinished ending before emoji: the emoji does not end it
        ("it broke and :(", Shape.UNFINISHED),
        ("I will try and 😅", Shape.UNFINISHED),
        ("I will try and😅", Shape.UNFINISHED),
        ("see below: 👇", Shape.UNFINISHED),
        ("because 🙏", Shape.DEFAULT),  # one word: not unfinished, nor complete
        # one word is never unfinished by its word: answers to a choice, a lone conjunction
        ("a", Shape.DEFAULT),
        ("e", Shape.DEFAULT),
        ("o", Shape.DEFAULT),
        ("y", Shape.DEFAULT),
        ("and", Shape.DEFAULT),
        ("weil", Shape.DEFAULT),
        # words that end sentences in another listed language (or without their accent)
        ("I need to fix my car", Shape.DEFAULT),
        ("let it die", Shape.DEFAULT),
        ("quiero uno mas", Shape.DEFAULT),
        ("quero mais", Shape.DEFAULT),
        ("c'est con", Shape.DEFAULT),
        ("je suis la", Shape.DEFAULT),
        ("t'es ou", Shape.DEFAULT),
        ("es para el", Shape.DEFAULT),
        ("es para mi", Shape.DEFAULT),
        ("a notificação não para", Shape.DEFAULT),
        ("é meu", Shape.DEFAULT),
        ("er kommt heute an", Shape.DEFAULT),
        ("ich komme mit", Shape.DEFAULT),
        ("ich will das", Shape.DEFAULT),
        ("das geht, oder", Shape.DEFAULT),
        ("weißt du was ich meine", Shape.DEFAULT),
        ("if you want to", Shape.DEFAULT),  # a stranded English preposition ends a thought
        ("I think so", Shape.DEFAULT),
        ("the type is `Maybe a`", Shape.DEFAULT),  # code, not an article
        # greetings
        ("hello", Shape.GREETING),
        ("Hey there", Shape.GREETING),
        ("Bom dia!", Shape.GREETING),
        ("buenos días a todos", Shape.GREETING),
        ("hello, I have a question", Shape.DEFAULT),
        # complete, trailing off, plain
        ("Where is my order?", Shape.COMPLETE),
        ("done✅", Shape.COMPLETE),
        ("I'll try that :slightly_smiling_face:", Shape.COMPLETE),
        ("well...", Shape.DEFAULT),
        ("not sure…", Shape.DEFAULT),
        ("I was wondering", Shape.DEFAULT),
        ("```", Shape.DEFAULT),
        ("", Shape.DEFAULT),
        ("   ", Shape.DEFAULT),
    ],
)
def test_shape_of(text: str, shape: Shape) -> None:
    assert shape_of(text) is shape


@pytest.mark.parametrize(
    ("token", "emoji"),
    [
        ("👍", True),
        ("👨‍👩‍👧", True),  # joined by zero-width joiners
        (":slightly_smiling_face:", True),
        (":grin::+1:", True),
        (";-)", True),
        ("<3", True),
        ("`", False),
        ("^", False),
        ("café", False),
        (":", False),
        ("10:30:", False),
        ("83", False),
        ("8)", False),
        ("8p", False),
        ("=3", False),
        (":3", True),
        ("°", False),
        ("©", False),
        ("©️", True),
        ("™", False),
        ("1️⃣", True),
        ("#️⃣", True),
        ("1\u20e3", True),  # a keycap without the variation selector
        ("1\u20e3👍", True),
        ("🇫🇷", True),
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", True),  # tags
        ("🏻", False),  # a skin tone modifies a pictograph; alone it is none
        ("e\u0301", False),
        ("\u0301", False),
        ("\u200d", False),
    ],
)
def test_is_emoji(token: str, emoji: bool) -> None:
    assert is_emoji(token) is emoji


def test_a_long_token_is_read_quickly() -> None:
    """The emoji suffix is looked for from the end only: a huge token ending in a word is
    not scanned as a whole (a regression guard for a quadratic search)."""
    assert shape_of(":a" * 50_000 + " and") is Shape.UNFINISHED
    assert shape_of(":" + "a" * 100_000) is Shape.DEFAULT


@pytest.mark.parametrize(
    ("window", "incomplete", "maximum", "expected"),
    [
        (1200, 0, 4000, 1200),  # no lengthening
        (1200, 3000, 4000, 3000),
        (300, 3000, 1000, 1000),  # a tenant's narrower windows keep it inside them
        (1200, 800, 4000, 1200),  # never shorter than the plain window
    ],
)
def test_the_unfinished_window_stays_within_the_plain_and_the_largest_window(
    window: int, incomplete: int, maximum: int, expected: int
) -> None:
    policy = ChannelPolicy(
        AccumulationMode.ADAPTIVE, window, 100, maximum, 0, incomplete_window_ms=incomplete
    )
    assert policy.unfinished_window_ms == expected
    unfinished = decide(policy, [m(0, "so the thing is,")], None, False, 0)
    assert unfinished == WindowDecision(expected, R.INCOMPLETE if expected < maximum else R.CAP)


def test_a_negative_unfinished_window_is_refused() -> None:
    with pytest.raises(InvalidValue, match="incomplete_window_ms"):
        ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 0, incomplete_window_ms=-1)
