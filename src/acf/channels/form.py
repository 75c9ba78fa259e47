"""Form bodies read strictly (pure): every field exactly as sent, or ``InvalidValue``.

Web frameworks read a form leniently: an invalid UTF-8 byte becomes U+FFFD (urlencoded) or
the whole field is re-read as Latin-1 (multipart), so a mail would be stored garbled with
nothing said. Here a field that does not decode in its declared charset is refused, naming
the field. Attachments (parts with a filename) are not read: acf stores references, never
bytes.
"""

import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from acf.domain.errors import InvalidValue

MAX_FIELDS = 1000

Fields = Sequence[tuple[str, str]]
"""Form fields in the order received; a name may repeat."""


def parse_urlencoded(raw: bytes) -> list[tuple[str, str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body, values exactly as sent
    (blank ones too). Percent-escapes must decode as UTF-8."""
    try:
        text = raw.decode("ascii")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidValue("the body is not form-encoded UTF-8") from None
    except ValueError as exc:
        raise InvalidValue(f"the body is not form-encoded: {exc}") from None


@dataclass(frozen=True, slots=True)
class Part:
    """A text field of a multipart body, not yet decoded."""

    name: str
    data: bytes
    charset: str | None
    """Its part's own ``charset``, if it names one."""


def multipart_parts(raw: bytes, content_type: str) -> list[Part]:
    """The text fields of a ``multipart/form-data`` body, undecoded (``decode_parts``)."""
    if "boundary=" not in content_type.lower():
        raise InvalidValue("the body is not multipart/form-data: no boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n"
    try:
        message = BytesParser().parsebytes(head.encode("latin-1", "replace") + raw)
    except (ValueError, LookupError) as exc:  # the stdlib parser is lenient; be safe
        raise InvalidValue(f"the body is not multipart/form-data: {exc}") from None
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list):
        raise InvalidValue("the body is not multipart/form-data")
    found: list[Part] = []
    for part in parts:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise InvalidValue("the body has a part without a name")
        if part.get_param("filename", header="content-disposition") is not None:
            continue
        if len(found) >= MAX_FIELDS:
            raise InvalidValue(f"the body has more than {MAX_FIELDS} fields")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        found.append(Part(name, data, part.get_content_charset()))
    return found


def decode_parts(
    parts: Sequence[Part], charsets: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Each field decoded in the charset ``charsets`` names for it (SendGrid's
    ``charsets`` field), else its part's own, else UTF-8; one that does not decode is
    refused, naming it."""
    return [
        (part.name, _decoded(part, (charsets or {}).get(part.name) or part.charset or "utf-8"))
        for part in parts
    ]


def parse_multipart(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    """The text fields of a ``multipart/form-data`` body, each in its part's charset
    (UTF-8 when it names none)."""
    return decode_parts(multipart_parts(raw, content_type))


def _decoded(part: Part, charset: str) -> str:
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise InvalidValue(f"{part.name}: unknown charset {charset[:40]!r}") from None
    try:
        return part.data.decode(codec)
    except UnicodeDecodeError:
        raise InvalidValue(f"{part.name}: not valid {charset[:40]}") from None


def single(fields: Fields, names: Sequence[str]) -> dict[str, str]:
    """``fields`` as a mapping, refusing a repeated field among ``names`` (which of two
    values would be the message?); other repeated fields keep their last value."""
    mapping: dict[str, str] = {}
    for name, value in fields:
        if name in mapping and name in names:
            count = sum(1 for key, _ in fields if key == name)
            raise InvalidValue(f"{name}: sent {count} times; expected once")
        mapping[name] = value
    return mapping


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], fields: Mapping[str, object]) -> M:
    """``fields`` as ``model``; ``InvalidValue`` naming the first wrong field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidValue(problem(exc)) from None


def problem(exc: ValidationError) -> str:
    """The first error of ``exc`` as ``field: what was expected``."""
    first: Any = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "missing":
        return f"{where}: missing or empty"
    error = first.get("ctx", {}).get("error")
    return f"{where}: {error if error is not None else first['msg']}"
