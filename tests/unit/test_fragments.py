"""The fragments analysis (``acf.replay.fragments``): which messages count as followed, the
rows per shape and the closer look, and the command line."""

from pathlib import Path

import pytest

from acf.replay.fragments import (
    WITHIN_S,
    Gap,
    Row,
    check_rows,
    gaps,
    main,
    shape_rows,
    unfinished_ending,
)
from acf.replay.sources import ChatLine


def line(conversation: str, sender: str, at_s: float, text: str) -> ChatLine:
    return ChatLine(conversation, sender, int(at_s * 1000), text)


LOG = [
    line("1", "ana", 0, "my order:"),
    line("1", "bo", 1, "hello"),  # someone else meanwhile: ana's gap still counts
    line("1", "ana", 2.5, "#12345"),
    line("1", "ana", 4.5, "ok"),
    line("1", "ana", 60, "thanks!"),
    line("2", "ana", 61, "other conversation, other session"),
]


def test_gaps_are_per_sender_and_conversation() -> None:
    found = {(g.line.conversation, g.line.sender, g.line.text): g.next_ms for g in gaps(LOG)}
    assert found == {
        ("1", "ana", "my order:"): 2500,
        ("1", "ana", "#12345"): 2000,
        ("1", "ana", "ok"): 55_500,
        ("1", "ana", "thanks!"): None,
        ("1", "bo", "hello"): None,
        ("2", "ana", "other conversation, other session"): None,
    }


def test_rows_by_shape() -> None:
    rows = {r.label: r for r in shape_rows(gaps(LOG))}
    assert WITHIN_S == (1, 2, 3, 4, 6)
    assert rows["unfinished"] == Row("unfinished", 1, (0, 0, 1, 1, 1))
    assert rows["default"] == Row("default", 2, (0, 1, 1, 1, 1))  # "#12345", conversation 2
    assert rows["acknowledgement"] == Row("acknowledgement", 2, (0, 0, 0, 0, 0))
    assert rows["greeting"] == Row("greeting", 1, (0, 0, 0, 0, 0))
    assert rows["complete"] == Row("complete", 0, (0, 0, 0, 0, 0))
    assert rows["all"] == Row("all", 6, (0, 1, 2, 2, 2))
    assert rows["unfinished"].share(2) == 1.0
    assert rows["complete"].share(0) == 0.0


def test_the_closer_look() -> None:
    lines = [
        line("1", "a", 0, "ok"),
        line("1", "a", 1, "so"),
        line("1", "a", 2, "first,"),
        line("1", "a", 9, "I'll try :)"),
        line("1", "a", 30, "and"),
        line("1", "a", 60, "me and"),
        line("1", "a", 90, "well..."),
        line("1", "a", 92, "not sure… 🤔"),  # complete: the emoji ends it
        line("1", "a", 120, "ok..."),  # an acknowledgement
        line("1", "a", 150, "hmm, maybe…"),
    ]
    rows = {r.label: r for r in check_rows(gaps(lines))}
    assert rows["≤ 4 chars (old rule)"] == Row("≤ 4 chars (old rule)", 3, (2, 2, 2, 2, 2))
    assert rows["≤ 4 chars, not ack"].messages == 2  # "so", "and"
    assert rows["emoji end, not ack"].messages == 2
    assert rows["unfinished , ; -"].messages == 1
    assert rows["unfinished conj."].messages == 1  # "me and"; "and" alone is one word
    # the plain texts ending in an ellipsis, which the rule leaves at the plain window
    assert rows["ends ... or … (plain)"] == Row("ends ... or … (plain)", 2, (0, 1, 1, 1, 1))


@pytest.mark.parametrize(
    ("text", "ending"),
    [
        ("see this:", "unfinished :"),
        ("first, :)", "unfinished , ; -"),
        ("a - ", "unfinished , ; -"),
        ("I want a", "unfinished conj."),
        ("I will try and😅", "unfinished conj."),
        ("first,😅", "unfinished , ; -"),
    ],
)
def test_unfinished_ending(text: str, ending: str) -> None:
    assert unfinished_ending(text) == ending


def test_a_message_without_text_is_plain() -> None:
    rows = {r.label: r for r in shape_rows([Gap(line("1", "a", 0, ""), None)])}
    assert rows["default"].messages == 1


def test_the_command_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.csv"
    log.write_text(
        "conversation,sender,timestamp,text\n"
        + "".join(f"{c},ana,{t},{x}\n" for c, t, x in [(1, 0, "hi"), (1, 2, "ok"), (2, 9, "so")]),
        encoding="utf-8",
    )
    assert main([str(log), "--half", "fit"]) == 0
    out = capsys.readouterr().out
    assert "log.csv, fit half" in out
    assert "acknowledgement" in out and "A closer look" in out


def test_an_unreadable_log_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_log_that_is_not_utf8_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "latin.csv"
    log.write_bytes(b"sender,timestamp,text\nann,1,ok\nann,2,caf\xe9\n")
    assert main([str(log)]) == 2
    assert f"error: {log}:line 3: not UTF-8" in capsys.readouterr().err
