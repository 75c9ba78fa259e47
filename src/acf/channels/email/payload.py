"""Mailgun's and SendGrid's inbound forms as typed models: every field acf reads, checked
once, so no form of any shape reaches the parser as anything but these
(``ValidationError`` becomes ``InvalidValue`` naming the field).

Facts (``../shared/reference/channels.md``): a Mailgun route posts ``recipient``,
``sender``, ``from``, ``subject``, ``body-plain``, ``stripped-text``, ``body-html`` and
``message-headers`` (a JSON list of ``[name, value]``); SendGrid Inbound Parse posts the
raw ``headers``, ``from``, ``to``, ``subject``, ``text``, ``html``, the SMTP ``envelope``
(JSON: ``{"to": [...], "from": ...}``) and ``charsets`` (JSON: each field's charset).
Other fields (attachments, spam scores) are ignored.
"""

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from acf.channels.form import Fields, single, validated

Pairs = tuple[tuple[str, str], ...]


def _json(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("expected JSON") from None


def _pairs(raw: Any) -> Pairs:
    value = _json(raw)
    if not isinstance(value, list):
        raise ValueError("expected a JSON list of [name, value]")
    pairs = []
    for index, pair in enumerate(value):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise ValueError(f"item {index}: expected [name, value]")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _envelope(raw: Any) -> Any:
    value = _json(raw)
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object ({"to": [...], "from": ...})')
    return value


def _charsets(raw: Any) -> dict[str, str]:
    value = _json(raw)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a JSON object of field names and charsets")
    return value


def _raw_headers(value: str) -> str:
    if not value:
        raise ValueError("expected the mail's raw headers")
    return value


class _Form(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, populate_by_name=False)


class MailgunForm(_Form):
    """A Mailgun route's forwarded mail (its signature fields are checked apart)."""

    recipient: str | None = None
    sender: str | None = None
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    body_plain: str | None = Field(default=None, alias="body-plain")
    stripped_text: str | None = Field(default=None, alias="stripped-text")
    body_html: str | None = Field(default=None, alias="body-html")
    message_headers: Annotated[Pairs | None, BeforeValidator(_pairs)] = Field(
        default=None, alias="message-headers"
    )


def _recipients(raw: Any) -> list[str]:
    """The envelope's ``to``; another shape is left out (the ``to`` field stands in)."""
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return raw
    return []


class SendGridEnvelope(_Form):
    to: Annotated[list[str], BeforeValidator(_recipients)] = Field(default_factory=list)


class SendGridForm(_Form):
    """A SendGrid Inbound Parse post."""

    headers: Annotated[str, AfterValidator(_raw_headers)]
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    envelope: Annotated[SendGridEnvelope | None, BeforeValidator(_envelope)] = None


class Charsets(_Form):
    charsets: Annotated[dict[str, str], BeforeValidator(_charsets)] = Field(default_factory=dict)


MAILGUN_FIELDS = (
    "recipient",
    "sender",
    "from",
    "subject",
    "body-plain",
    "stripped-text",
    "body-html",
    "message-headers",
    "timestamp",
    "token",
    "signature",
)
SENDGRID_FIELDS = ("headers", "from", "to", "subject", "text", "html", "envelope", "charsets")


def mailgun_form(form: Fields) -> MailgunForm:
    """A Mailgun route's fields. Raises ``InvalidValue`` naming the field."""
    return validated(MailgunForm, single(form, MAILGUN_FIELDS))


def sendgrid_form(form: Fields) -> SendGridForm:
    """A SendGrid Inbound Parse post's fields. Raises ``InvalidValue`` naming the field."""
    return validated(SendGridForm, single(form, SENDGRID_FIELDS))


def declared_charsets(raw: str | None) -> dict[str, str]:
    """SendGrid's ``charsets`` field: the charset of each other field."""
    if raw is None:
        return {}
    return validated(Charsets, {"charsets": raw}).charsets
