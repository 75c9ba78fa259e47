"""Inbound email from Mailgun routes and SendGrid Inbound Parse, as one normalised mail.

Facts (``../shared/reference/channels.md``): a Mailgun route posts a form with
``signature`` = hex HMAC-SHA256 of ``timestamp + token`` under the webhook signing key,
``sender``/``from``/``recipient``/``subject``/``body-plain``/``stripped-text`` and the
headers as ``message-headers`` (a JSON list of ``[name, value]``). SendGrid posts
multipart/form-data with the raw ``headers``, ``from``, ``to``, ``subject``, ``text``,
``html`` and the SMTP ``envelope`` (JSON), and signs nothing (a basic-auth password in the
Parse URL is its only credential). Both retry: the same mail may arrive more than once.

The customer is the address of the ``From`` header, lower-cased (the envelope sender is
often a bounce address that changes per mail); the thread store may map a reply to
another customer (``acf.ports.email_threads``).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from acf.adapters.channels.email.text import html_to_text, reply_text
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_TEXT_LENGTH, NewMessage
from acf.domain.session_key import SessionKey

MAX_CLOCK_SKEW_S = 15 * 60
"""A Mailgun timestamp further than this from now is refused (a replayed request)."""
MAX_REFERENCES_READ = 100
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class InboundMail:
    customer: str
    """The From address, lower-cased."""
    recipient: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    text: str
    """The new text of the mail (quoted history removed), or "" when it has none."""
    date_ms: int | None = None
    sender_name: str | None = None
    auto_submitted: bool = False
    """An automatic mail (``Auto-Submitted`` other than ``no``, RFC 3834): answering
    out-of-office replies and bounces would make two robots talk forever."""

    @property
    def provider_id(self) -> str:
        """The dedupe key: a Message-ID alone is not safe (senders choose it, and one mail
        to two of our addresses is two deliveries), so it is hashed with the sender and
        the recipient."""
        parts = "\0".join((self.message_id, self.customer, self.recipient))
        return "email:" + hashlib.sha256(parts.encode()).hexdigest()

    @property
    def thread_references(self) -> tuple[str, ...]:
        """Its References, or its In-Reply-To when it has none (RFC 5322 §3.6.4)."""
        if self.references:
            return self.references
        return (self.in_reply_to,) if self.in_reply_to else ()

    def message(self, tenant: str, agent: str, customer: str) -> NewMessage:
        """The stored message, for ``customer`` (the sender, or the thread's customer)."""
        text = self.text or self.subject
        if len(text) > MAX_TEXT_LENGTH:  # a long mail is cut, not refused: nothing is lost
            text = text[: MAX_TEXT_LENGTH - 1] + "…"  # that a provider's retry would bring
        return NewMessage(
            key=SessionKey(tenant, agent, customer, Channel.EMAIL),
            provider_message_id=self.provider_id,
            text=text,
            provider_timestamp_ms=self.date_ms,
            sender_name=self.sender_name,
        )


def mailgun_signature_problem(
    signing_key: str, form: Mapping[str, str], now_s: float
) -> str | None:
    """Why the form's signature is refused, or None when it is Mailgun's (constant time)."""
    timestamp, token, signature = (form.get(k, "") for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and signature):
        return "signature, timestamp and token are required"
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature.strip().lower()):
        return "signature does not match timestamp + token"
    try:
        skew = abs(now_s - int(timestamp))
    except ValueError:
        return "timestamp is not unix seconds"
    if skew > MAX_CLOCK_SKEW_S:
        return f"timestamp is more than {MAX_CLOCK_SKEW_S // 60} minutes from now"
    return None


def basic_auth_ok(header: str | None, expected: str) -> bool:
    """``Authorization: Basic base64(user:password)`` equals ``expected`` (constant time)."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode())


def parse_mailgun(form: Mapping[str, str]) -> InboundMail:
    """A Mailgun route's form; raises ``InvalidValue`` naming the field."""
    headers = _mailgun_headers(form.get("message-headers"))
    text = form.get("stripped-text") or reply_text(form.get("body-plain") or "")
    return _mail(
        from_header=form.get("from") or form.get("sender") or headers.get("from"),
        from_field="from",
        recipient=form.get("recipient") or headers.get("to"),
        recipient_field="recipient",
        subject=form.get("subject") or headers.get("subject") or "",
        text=text or reply_text(_html_text(form.get("body-html"))),
        headers=headers,
    )


def parse_sendgrid(form: Mapping[str, str]) -> InboundMail:
    """A SendGrid Inbound Parse form; raises ``InvalidValue`` naming the field."""
    raw = form.get("headers")
    if not raw:
        raise InvalidValue("headers: expected the mail's raw headers")
    parsed = HeaderParser().parsestr(raw)
    headers = {name.lower(): str(value) for name, value in parsed.items()}
    envelope = _json(form.get("envelope") or "{}", "envelope")
    to = envelope.get("to") if isinstance(envelope, dict) else None
    if isinstance(to, list) and to and isinstance(to[0], str):
        recipient: str | None = to[0]
    else:
        recipient = form.get("to") or headers.get("to")
    text = reply_text(form.get("text") or "") or reply_text(_html_text(form.get("html")))
    return _mail(
        from_header=form.get("from") or headers.get("from"),
        from_field="from",
        recipient=recipient,
        recipient_field="envelope.to",
        subject=form.get("subject") or headers.get("subject") or "",
        text=text,
        headers=headers,
    )


def _mail(
    *,
    from_header: str | None,
    from_field: str,
    recipient: str | None,
    recipient_field: str,
    subject: str,
    text: str,
    headers: Mapping[str, str],
) -> InboundMail:
    name, address = parseaddr(from_header or "")
    if "@" not in address:
        raise InvalidValue(f"{from_field}: expected the sender's email address")
    addresses = [a for _n, a in getaddresses([recipient or ""]) if "@" in a]
    if not addresses:
        raise InvalidValue(f"{recipient_field}: expected the recipient's email address")
    in_reply_to = _ids(headers.get("in-reply-to"))
    references = _ids(headers.get("references"))[-MAX_REFERENCES_READ:]
    subject = " ".join(subject.split())
    text = text.strip()
    own_id = _ids(headers.get("message-id"))
    message_id = own_id[0] if own_id else _derived_id(address, addresses[0], subject, text, headers)
    return InboundMail(
        customer=address.lower(),
        recipient=addresses[0].lower(),
        message_id=message_id,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(references),
        subject=subject,
        text=text,
        date_ms=_date_ms(headers.get("date")),
        sender_name=name or None,
        auto_submitted=headers.get("auto-submitted", "no").strip().lower() != "no",
    )


def _derived_id(
    sender: str, recipient: str, subject: str, text: str, headers: Mapping[str, str]
) -> str:
    """A Message-ID for a mail without one, from its content: a provider's retry of the
    same mail derives the same id (and is deduplicated), two different mails do not."""
    content = "\0".join((sender, recipient, headers.get("date", ""), subject, text))
    return f"<{hashlib.sha256(content.encode()).hexdigest()[:32]}@derived.acf>"


def _ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a header; a bare id without brackets is bracketed."""
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if not found and value.strip() and not any(c.isspace() for c in value.strip()):
        found = [f"<{value.strip()}>"]
    return found


def _mailgun_headers(raw: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    pairs = _json(raw, "message-headers")
    if not isinstance(pairs, list):
        raise InvalidValue("message-headers: expected a JSON list of [name, value]")
    headers: dict[str, str] = {}
    for index, pair in enumerate(pairs):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise InvalidValue(f"message-headers[{index}]: expected [name, value]")
        headers.setdefault(pair[0].lower(), pair[1])
    return headers


def _json(raw: str, field: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidValue(f"{field}: expected JSON") from None


def _date_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError):
        return None  # senders write odd dates; the time of receipt orders them then


def _html_text(html: str | None) -> str:
    return html_to_text(html or "")
