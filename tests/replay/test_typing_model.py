"""The replay's frozen typing model (pure): when typing starts, how long it lasts, and the
signals the web chat would send meanwhile."""

from dataclasses import replace
from pathlib import Path

import pytest

from acf.replay.runs import session_of
from acf.replay.sources import ChatLine, read_csv
from acf.replay.typing_model import (
    Signal,
    Stretch,
    TypingModel,
    keystrokes,
    pauses_ms,
    reading_pause_ms,
    synthesise,
    web_chat_signals,
)

SAMPLE = Path(__file__).parents[2] / "examples" / "chat-timing-sample.csv"
T = 1_000_000  # a send time
NO_PAUSES = TypingModel(pause_chance=0.0)
PAUSE_3S = TypingModel(pause_chance=1.0, pause_sigma=0.0, pause_median_ms=3000)


def line(text: str, at_ms: int = T, sender: str = "ann", conversation: str = "c") -> ChatLine:
    return ChatLine(conversation, sender, at_ms, text)


@pytest.mark.parametrize(
    ("keys", "send", "expected"),
    [
        # continuous typing: "started" at the first keystroke, "stopped" at the send
        ([0, 200, 400], 600, [(0, True), (600, False)]),
        # "started" repeated at the first keystroke 2 s or more after the last one
        ([0, 1000, 2000, 3000, 4100], 4300, [(0, True), (2000, True), (4100, True), (4300, False)]),
        # a pause shorter than the idle time sends nothing; the next key repeats "started"
        ([0, 1400, 2100], 2300, [(0, True), (2100, True), (2300, False)]),
        # a pause of exactly the idle time does not stop
        ([0, 1500], 1600, [(0, True), (1600, False)]),
        # a longer pause: "stopped" 1.5 s into it, "started" when typing resumes
        ([0, 3000], 3200, [(0, True), (1500, False), (3000, True), (3200, False)]),
        # two long pauses: two stop/start pairs
        (
            [0, 2000, 4000],
            4200,
            [(0, True), (1500, False), (2000, True), (3500, False), (4000, True), (4200, False)],
        ),
        # idle before the send: already stopped, so no "stopped" at the send
        ([0], 2000, [(0, True), (1500, False)]),
    ],
)
def test_signals_follow_the_web_chat(
    keys: list[int], send: int, expected: list[tuple[int, bool]]
) -> None:
    assert web_chat_signals(keys, send, TypingModel()) == expected


@pytest.mark.parametrize(
    ("text", "earliest", "model", "expected"),
    [
        # len / cps, ending one keystroke before the send
        ("hello", None, NO_PAUSES, [T - 1000, T - 800, T - 600, T - 400, T - 200]),
        (
            "hello",
            None,
            replace(NO_PAUSES, cps=2.0),
            [T - 2500, T - 2000, T - 1500, T - 1000, T - 500],
        ),
        # a pause after a word
        ("ab cd", None, PAUSE_3S, [T - 4000, T - 3800, T - 3600, T - 400, T - 200]),
        # the log's gap is long enough: the earliest instant does not matter
        ("hello", T - 5000, NO_PAUSES, [T - 1000, T - 800, T - 600, T - 400, T - 200]),
        # the gap is shorter: typing starts at the earliest instant, played faster
        ("hello", T - 500, NO_PAUSES, [T - 500, T - 400, T - 300, T - 200, T - 100]),
        ("ab cd", T - 2000, PAUSE_3S, [T - 2000, T - 1900, T - 1800, T - 200, T - 100]),
        # no time at all: pasted, or a quick answer
        ("hello", T, NO_PAUSES, []),
        ("hello", T + 700, NO_PAUSES, []),
        # nothing to type
        ("", None, NO_PAUSES, []),
    ],
)
def test_keystrokes(
    text: str, earliest: int | None, model: TypingModel, expected: list[int]
) -> None:
    assert keystrokes(line(text), earliest, model) == expected


@pytest.mark.parametrize(
    ("previous", "expected_ms"),
    [
        (line("x" * 50, sender="bob"), 1350 + 2000),  # someone else's: read at 25 chars/s
        (line("x" * 500, sender="bob"), 1350 + 20_000),  # longer to read
        (line("", sender="bob"), 1350),
        (line("x" * 50), 1350),  # one's own fragment is not re-read
    ],
)
def test_reading_pause(previous: ChatLine, expected_ms: float) -> None:
    assert reading_pause_ms(previous, line("next"), TypingModel()) == expected_ms


def test_a_conversation_is_typed_after_reading_and_signalled_at_each_send() -> None:
    lines = [
        line("hello", T, "ann"),  # first: typed 1 s before
        line("x" * 25, T + 30_000, "bob"),  # after 1.35 s + 0.2 s reading: 5 s of typing fits
        line("ok", T + 31_000, "ann"),  # 2.35 s reading pause: after the send, not typed
        line("abcdefghij", T + 35_000, "ann"),  # 2 s typing; earliest 1.35 s after "ok": fits
        line("abcdefghij", T + 36_000, "bob"),  # earliest 2.75 s after ann's: not typed
        line("abcdefghij", T + 39_000, "bob"),  # earliest 1.35 s after own: compressed
    ]
    signals, stretches = synthesise(lines, NO_PAUSES)
    assert stretches == [
        Stretch("c/ann", 1, T - 1000, T),
        Stretch("c/bob", 1, T + 25_000, T + 30_000),
        Stretch("c/ann", 3, T + 33_000, T + 35_000),
        Stretch("c/bob", 3, T + 37_350, T + 39_000),
    ]
    assert signals == [
        Signal(T - 1000, "c/ann", True),
        Signal(T, "c/ann", False),
        Signal(T + 25_000, "c/bob", True),
        Signal(T + 27_000, "c/bob", True),
        Signal(T + 29_000, "c/bob", True),
        Signal(T + 30_000, "c/bob", False),
        Signal(T + 33_000, "c/ann", True),
        Signal(T + 35_000, "c/ann", False),
        Signal(T + 37_350, "c/bob", True),
        Signal(T + 39_000, "c/bob", False),
    ]


def test_signals_are_in_time_order_across_conversations() -> None:
    lines = [line("x" * 20, T, "ann", "a"), line("x" * 5, T + 1000, "bob", "b")]
    signals, _ = synthesise(lines, NO_PAUSES)
    assert signals == [
        Signal(T - 4000, "a/ann", True),
        Signal(T - 2000, "a/ann", True),
        Signal(T, "a/ann", False),  # equal times: in the order of the messages
        Signal(T, "b/bob", True),
        Signal(T + 1000, "b/bob", False),
    ]


def test_pauses_come_after_words_only_and_are_capped() -> None:
    model = TypingModel(pause_chance=1.0, pause_sigma=3.0)
    pauses = pauses_ms(line("one two three four five six seven eight nine ten " * 5), model)
    text = "one two three four five six seven eight nine ten " * 5
    assert all((p > 0) == (c == " ") for p, c in zip(pauses, text, strict=True))
    assert max(pauses) == model.pause_cap_ms  # some heavy-tailed draw hits the cap
    assert len(set(pauses)) > 10


def test_the_pauses_depend_on_the_seed_and_the_message_not_on_the_order() -> None:
    text = "so I was wondering whether the order I placed yesterday can still be changed"
    one = pauses_ms(line(text), TypingModel())
    assert pauses_ms(line(text), TypingModel()) == one
    assert pauses_ms(line(text), TypingModel(seed=24)) != one
    assert pauses_ms(line(text, at_ms=T + 1), TypingModel()) != one
    assert pauses_ms(line(text, sender="bob"), TypingModel()) != one
    assert sum(p > 0 for p in one) >= 1  # the default model pauses in a long text


def test_a_conversation_is_synthesised_alike_alone_or_among_others() -> None:
    lines = read_csv(SAMPLE)
    conversation = lines[0].conversation
    alone = [x for x in lines if x.conversation == conversation]
    all_signals, all_stretches = synthesise(lines, TypingModel())
    signals, stretches = synthesise(alone, TypingModel())
    sessions = {session_of(x) for x in alone}
    assert stretches and signals
    assert stretches == [s for s in all_stretches if s.session in sessions]
    assert signals == [s for s in all_signals if s.session in sessions]


def test_the_sample_log_obeys_the_model() -> None:
    """Every stretch ends at its message and starts after the reading pause; the signals of
    each stretch start with "started", alternate properly and end with "stopped"."""
    model = TypingModel()
    lines = read_csv(SAMPLE)
    signals, stretches = synthesise(lines, model)
    by_key = {}
    seqs: dict[str, int] = {}
    previous: dict[str, ChatLine] = {}
    for x in lines:
        session = session_of(x)
        seqs[session] = seqs.get(session, 0) + 1
        by_key[session, seqs[session]] = (x, previous.get(x.conversation))
        previous[x.conversation] = x
    assert len(stretches) > len(lines) / 2
    for stretch in stretches:
        message, before = by_key[stretch.session, stretch.seq]
        assert stretch.end_ms == message.at_ms
        assert stretch.start_ms < stretch.end_ms
        if before is not None:
            assert stretch.start_ms >= before.at_ms + reading_pause_ms(before, message, model) - 1
        mine = [s for s in signals if s.session == stretch.session]
        inside = [s for s in mine if stretch.start_ms <= s.at_ms <= stretch.end_ms]
        assert inside[0] == Signal(stretch.start_ms, stretch.session, True)
        active = False
        for signal in inside:
            assert signal.active or active  # "stopped" only while typing
            active = signal.active
        assert not active
    assert [s.at_ms for s in signals] == sorted(s.at_ms for s in signals)


@pytest.mark.parametrize(
    "fields",
    [
        {"cps": 0.0},
        {"read_cps": -1.0},
        {"pause_chance": 1.5},
        {"react_ms": -1},
        {"pause_sigma": -0.1},
        {"idle_ms": 0},
    ],
)
def test_an_impossible_model_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="typing model"):
        TypingModel(**fields)  # type: ignore[arg-type]
