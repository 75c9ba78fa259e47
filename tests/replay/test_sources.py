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


HEADER = "sender,timestamp,text\n"
XML_MESSAGE = "<message><ts>{ts}</ts><user>{user}</user><text>{text}</text></message>"


def xml(ts: str = "1.5", user: str = "u", text: str = "hi") -> str:
    return f"<slack>{XML_MESSAGE.format(ts=1, user='u', text='x')}" + (
        f"{XML_MESSAGE.format(ts=ts, user=user, text=text)}</slack>"
    )


# Every way a log can be refused: (file name, content, what the error says)
BAD_LOGS: list[tuple[str, str | bytes, str]] = [
    ("f.txt", "x", "f.txt: cannot tell the format from the name; pass --format"),
    # CSV
    ("a.csv", "who,when\nx,1\n", "a.csv: the header must name sender, timestamp and text"),
    ("a2.csv", "", "a2.csv: the header must name sender, timestamp and text"),
    ("b.csv", HEADER + "ann,yesterday,hi\n", "b.csv:line 2: timestamp: not an ISO 8601"),
    ("b2.csv", HEADER + "ann,1e400,hi\n", "b2.csv:line 2: timestamp: not a finite number"),
    ("c.csv", HEADER + "ann,1,hi\n,2,hi\n", "c.csv:line 3: missing sender"),
    ("c2.csv", HEADER + "ann,,hi\n", "c2.csv:line 2: missing timestamp"),
    ("g.csv", HEADER + "ann,1,hi\nann,2,   \n", "g.csv:line 3: text: only whitespace"),
    ("n.csv", HEADER + "ann,1,hi\nann,2," + "x" * 200_000 + "\n", "n.csv:line 3: not CSV: field"),
    ("u.csv", HEADER.encode() + b"ann,1,hi\nann,2,caf\xe9\n", "u.csv:line 3: not UTF-8 "),
    # JSONL
    ("c.jsonl", '{"sender": "a", "timestamp": 1}\n[1]\n', "c.jsonl:line 1: missing text"),
    ("d.jsonl", "{not json\n", "d.jsonl:line 1: not JSON"),
    (
        "e.jsonl",
        '{"sender": "a", "timestamp": 1, "text": ""}\n\n[1]\n',
        "e.jsonl:line 3: expected an object",
    ),
    ("h.jsonl", '{"sender": "a", "timestamp": 1, "text": " "}\n', "h.jsonl:line 1: text: only"),
    ("t.jsonl", '{"sender": "a", "timestamp": "soon", "text": "x"}\n', "t.jsonl:line 1: timestamp"),
    (
        "t2.jsonl",
        '{"sender": "a", "timestamp": 1e400, "text": "x"}\n',
        "t2.jsonl:line 1: timestamp",
    ),
    ("u.jsonl", b'{"sender": "a", "timestamp": 1, "text": "\xff"}\n', "u.jsonl:line 1: not UTF-8 "),
    # Slack XML
    ("e.xml", "<slack><message>", "e.xml: not well-formed XML"),
    ("i.xml", xml(text=" "), "i.xml: <message> 2 at ts 1: text: only whitespace"),
    ("j.xml", xml(ts=""), "j.xml: <message> 2: missing <ts>"),
    ("k.xml", xml(user=""), "k.xml: <message> 2: missing <user>"),
    ("l.xml", xml(ts="yesterday"), "l.xml: <message> 2: ts: not an ISO 8601"),
    ("m.xml", xml().encode().replace(b"hi", b"h\xe9"), "m.xml: not well-formed XML.*line 1"),
]


@pytest.mark.parametrize(("name", "body", "message"), BAD_LOGS, ids=[b[0] for b in BAD_LOGS])
def test_bad_input_says_where_and_why(
    tmp_path: Path, name: str, body: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    with pytest.raises(SourceError, match=message):
        read(path)


def test_a_missing_file_and_an_unknown_format_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.csv: no such file"):
        read(tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="no such file"):
        read(tmp_path)  # a directory
    path = tmp_path / "chat.csv"
    path.write_text(HEADER + "ann,1,hi\n")
    with pytest.raises(SourceError, match="unknown format 'xml'; expected one of slack, csv"):
        read(path, "xml")


def test_a_non_utf8_byte_is_named_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"ann,1,ok\nann,2,caf\xe9\n")
    with pytest.raises(SourceError) as caught:
        read(path)
    assert str(caught.value) == (
        f"{path}:line 3: not UTF-8 (byte 0xe9 at column 10); save the log as UTF-8"
    )


def test_a_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + "ann,1,café\n".encode())
    assert read(path) == [ChatLine("0", "ann", 1000, "café")]


def test_timestamps() -> None:
    assert parse_timestamp("1970-01-01T00:00:01+00:00") == 1000
    assert parse_timestamp(2) == 2000
    assert parse_timestamp("1546336800123") == 1546336800123
