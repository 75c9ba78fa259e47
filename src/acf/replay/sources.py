"""Timed chat logs in: the Slack export of ``data/chat-timing`` and simple CSV / JSONL.

Every format becomes a list of ``ChatLine`` (conversation, sender, time, text) in time
order. CSV needs a header with ``sender``, ``timestamp`` and ``text`` (``conversation``
optional); JSONL needs one object per line with the same keys. Timestamps are ISO 8601
(``2019-01-31T10:00:05`` or with an offset; naive means UTC) or numbers of seconds since the
epoch (milliseconds when above 10^11). CSV and JSONL are UTF-8 (a byte-order mark is
allowed); the Slack XML says its own encoding. Errors (``SourceError``) name the file, the
line (the message's number in the XML) and the field.
"""

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMATS = ("slack", "csv", "jsonl")


@dataclass(frozen=True, slots=True)
class ChatLine:
    conversation: str
    sender: str
    at_ms: int
    text: str


class SourceError(ValueError):
    """A chat log that cannot be read; the message says where and why."""


def parse_timestamp(value: Any) -> int:
    """Milliseconds since the epoch from ISO 8601 text or a number of seconds (or ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e300 else math.inf
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"not an ISO 8601 time or epoch seconds: {text!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number of seconds: {str(value)[:40]}")
    return int(number if number > 1e11 else number * 1000)


def read_slack_xml(path: Path) -> list[ChatLine]:
    """The disentangled Slack export: whole-second timestamps (the fraction is Slack's
    sequence counter, so it is floored)."""
    lines: list[ChatLine] = []
    try:
        for _, element in ET.iterparse(path):
            if element.tag != "message":
                continue
            where = f"{path}: <message> {len(lines) + 1}"
            ts = (element.findtext("ts") or "").split(".")[0]
            user = element.findtext("user")
            for field, value in (("ts", ts), ("user", user)):
                if not value:
                    raise SourceError(f"{where}: missing <{field}>")
            text = element.findtext("text") or ""
            if text and not text.strip():
                raise SourceError(f"{where} at ts {ts}: text: only whitespace (leave it empty)")
            try:
                at_ms = parse_timestamp(ts)
            except ValueError as exc:
                raise SourceError(f"{where}: ts: {exc}") from None
            lines.append(ChatLine(element.get("conversation_id", "0"), str(user), at_ms, text))
            element.clear()
    except ET.ParseError as exc:
        raise SourceError(f"{path}: not well-formed XML: {exc}") from None
    return _ordered(lines)


def _from_record(path: Path, where: str, record: Mapping[str, Any]) -> ChatLine:
    missing = [k for k in ("sender", "timestamp", "text") if record.get(k) in (None, "")]
    if missing and not (missing == ["text"] and "text" in record):
        raise SourceError(f"{path}:{where}: missing {', '.join(missing)}")
    try:
        at_ms = parse_timestamp(record["timestamp"])
    except ValueError as exc:
        raise SourceError(f"{path}:{where}: timestamp: {exc}") from None
    text = str(record.get("text") or "")
    if text and not text.strip():
        raise SourceError(f"{path}:{where}: text: only whitespace (leave it empty instead)")
    return ChatLine(str(record.get("conversation") or "0"), str(record["sender"]), at_ms, text)


def read_csv(path: Path) -> list[ChatLine]:
    reader = csv.DictReader(io.StringIO(_utf8(path), newline=""))
    lines = []
    try:
        if reader.fieldnames is None or not {"sender", "timestamp", "text"} <= set(
            reader.fieldnames
        ):
            raise SourceError(f"{path}: the header must name sender, timestamp and text")
        for row in reader:
            lines.append(_from_record(path, f"line {reader.line_num}", row))
    except csv.Error as exc:  # a NUL byte, a field over the size limit
        # the DictReader's own line_num lags behind on an error: its reader's does not
        raise SourceError(f"{path}:line {reader.reader.line_num}: not CSV: {exc}") from None
    return _ordered(lines)


def read_jsonl(path: Path) -> list[ChatLine]:
    lines = []
    for n, raw in enumerate(io.StringIO(_utf8(path), newline=None), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}:line {n}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise SourceError(f"{path}:line {n}: expected an object")
        lines.append(_from_record(path, f"line {n}", record))
    return _ordered(lines)


def _utf8(path: Path) -> str:
    """The file's text; a ``SourceError`` naming the line of the first byte that is not
    UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        decoded, at = exc.object, exc.start  # after a byte-order mark, if any
        line = decoded.count(b"\n", 0, at) + 1
        column = at - (decoded.rfind(b"\n", 0, at) + 1) + 1
        raise SourceError(
            f"{path}:line {line}: not UTF-8 (byte 0x{decoded[at]:02x} at column {column}); "
            "save the log as UTF-8"
        ) from None


def _ordered(lines: Iterable[ChatLine]) -> list[ChatLine]:
    return sorted(lines, key=lambda line: line.at_ms)  # stable: file order breaks ties


def detect(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "slack"
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise SourceError(f"{path}: cannot tell the format from the name; pass --format")


def read(path: Path, fmt: str | None = None) -> list[ChatLine]:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    chosen = fmt or detect(path)
    readers = {"slack": read_slack_xml, "csv": read_csv, "jsonl": read_jsonl}
    if chosen not in readers:
        raise SourceError(f"unknown format {chosen!r}; expected one of {', '.join(FORMATS)}")
    try:
        return readers[chosen](path)
    except OSError as exc:  # unreadable: permissions, a device, a vanished file
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
