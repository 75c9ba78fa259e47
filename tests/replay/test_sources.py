"""Reading timed chat logs: the Slack export, CSV and JSONL, with clear errors."""

from pathlib import Path

import pytest

from acf.replay.sources import ChatLine, SourceError, parse_timestamp, read

SLACK = """<slack><team_domain>x</team_domain>
  <message conversation_id="7"><ts>2019-01-01T10:00:05.000400</ts><user>Ann</user>
    <text>hi</text></message>
  <message conversation_id="7"><ts>2019-01-01T10:00:01.000300</ts><user>Bob</user>
    <text>yo &amp; co</text></message>
</slack>"""


def test_slack_xml_floors_the_fraction_and_orders_by_time(tmp_path: Path) -> None:
    path = tmp_path / "chat.xml"
    path.write_text(SLACK)
    lines = read(path)
    assert [(line.sender, line.text) for line in lines] == [("Bob", "yo & co"), ("Ann", "hi")]
    assert lines[1].at_ms - lines[0].at_ms == 4_000
    assert lines[0].conversation == "7"


def test_csv_and_jsonl_read_the_same(tmp_path: Path) -> None:
    csv_path = tmp_path / "chat.csv"
    csv_path.write_text(
        "conversation,sender,timestamp,text\n"
        "c1,ann,2019-01-01T10:00:00Z,hello\n"
        'c1,ann,1546336802.5,"are you there, anyone?"\n'
    )
    jsonl_path = tmp_path / "chat.jsonl"
    jsonl_path.write_text(
        '{"conversation": "c1", "sender": "ann", "timestamp": "2019-01-01T10:00:00", '
        '"text": "hello"}\n\n'
        '{"conversation": "c1", "sender": "ann", "timestamp": 1546336802500, '
        '"text": "are you there, anyone?"}\n'
    )
    expected = [
        ChatLine("c1", "ann", 1546336800000, "hello"),
        ChatLine("c1", "ann", 1546336802500, "are you there, anyone?"),
    ]
    assert read(csv_path) == expected
    assert read(jsonl_path) == expected


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("a.csv", "who,when\nx,1\n", "header must name sender, timestamp and text"),
        ("b.csv", "sender,timestamp,text\nann,yesterday,hi\n", "b.csv:line 2: timestamp"),
        ("c.jsonl", '{"sender": "a", "timestamp": 1}\n[1]\n', "c.jsonl:line 1: missing text"),
        ("d.jsonl", "{not json\n", "d.jsonl:line 1: not JSON"),
        ("e.xml", "<slack><message>", "not well-formed XML"),
        ("f.txt", "x", "cannot tell the format"),
        ("g.csv", "sender,timestamp,text\nann,1,hi\nann,2,   \n", "g.csv:line 3: text: only"),
        ("h.jsonl", '{"sender": "a", "timestamp": 1, "text": " "}\n', "h.jsonl:line 1: text"),
        (
            "i.xml",
            "<slack><message><ts>1.5</ts><user>u</user><text> </text></message></slack>",
            "<message> at ts 1: text: only whitespace",
        ),
    ],
)
def test_bad_input_says_where_and_why(tmp_path: Path, name: str, body: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(SourceError, match=message):
        read(path)


def test_timestamps() -> None:
    assert parse_timestamp("1970-01-01T00:00:01+00:00") == 1000
    assert parse_timestamp(2) == 2000
    assert parse_timestamp("1546336800123") == 1546336800123
