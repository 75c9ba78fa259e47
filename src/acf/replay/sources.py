"""Timed chat logs in: the Slack export of ``data/chat-timing`` and simple CSV / JSONL.

Every format becomes a list of ``ChatLine`` (conversation, sender, time, text) in time
order. CSV needs a header with ``sender``, ``timestamp`` and ``text`` (``conversation``
optional); JSONL needs one object per line with the same keys. Timestamps are ISO 8601
(``2019-01-31T10:00:05`` or with an offset; naive means UTC) or numbers of seconds since the
epoch (milliseconds when above 10^11). Errors name the file, the line and the field.
"""

import csv
import json
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
        number = float(value)
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
    return int(number if number > 1e11 else number * 1000)


def read_slack_xml(path: Path) -> list[ChatLine]:
    """The disentangled Slack export: whole-second timestamps (the fraction is Slack's
    sequence counter, so it is floored)."""
    lines = []
    try:
        for _, element in ET.iterparse(path):
            if element.tag != "message":
                continue
            ts = (element.findtext("ts") or "").split(".")[0]
            user = element.findtext("user")
            if not ts or not user:
                raise SourceError(f"{path}: a <message> lacks <ts> or <user>")
            text = element.findtext("text") or ""
            if text and not text.strip():
                raise SourceError(
                    f"{path}: <message> at ts {ts}: text: only whitespace (leave it empty)"
                )
            lines.append(
                ChatLine(element.get("conversation_id", "0"), user, parse_timestamp(ts), text)
            )
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
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"sender", "timestamp", "text"} <= set(
            reader.fieldnames
        ):
            raise SourceError(f"{path}: the header must name sender, timestamp and text")
        return _ordered(
            _from_record(path, f"line {n}", row) for n, row in enumerate(reader, start=2)
        )


def read_jsonl(path: Path) -> list[ChatLine]:
    lines = []
    with path.open(encoding="utf-8") as handle:
        for n, raw in enumerate(handle, start=1):
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
    return readers[chosen](path)
