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
another customer (``acf.ports.email_threads``). The forms are read through the typed
models of ``payload``.

A mail's text longer than a message holds (``MAX_TEXT_LENGTH``) is cut, not refused:
SendGrid drops what it gets a 4xx for, and Mailgun would retry the same mail for 8 hours
in vain. What was cut is said: ``truncated_from`` is the original length, and the route
records a ``message.truncated`` event with the message.
"""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from acf.channels.email.payload import mailgun_form, sendgrid_form
from acf.channels.email.text import html_to_text, reply_text
from acf.channels.form import Fields
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_TEXT_LENGTH, NewMessage
from acf.domain.session_key import SessionKey

MAX_CLOCK_SKEW_S = 15 * 60
"""A Mailgun timestamp further than this from now is refused (a replayed request)."""
MAX_REFERENCES_READ = 100
MAX_MESSAGE_ID = 998
"""RFC 5322's line limit: a longer Message-ID is not one (and is left out)."""
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class InboundMail:
    customer: str
    """The From address, lower-cased."""
    recipient: str
    """The address it was delivered to (the first of ``recipients``, until the route picks
    the tenant's own: ``owned_recipient``)."""
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
    recipients: tuple[str, ...] = ()
    """Every address the mail was delivered to, lower-cased."""

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

    @property
    def truncated_from(self) -> int | None:
        """The length of the mail's text when it is longer than a message holds."""
        length = len(self.text or self.subject)
        return length if length > MAX_TEXT_LENGTH else None

    def message(self, tenant: str, agent: str, customer: str) -> NewMessage:
        """The stored message, for ``customer`` (the sender, or the thread's customer);
        cut to ``MAX_TEXT_LENGTH`` with an ellipsis when longer (``truncated_from``)."""
        text = self.text or self.subject
        if len(text) > MAX_TEXT_LENGTH:
            text = text[: MAX_TEXT_LENGTH - 1] + "…"
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


def owned_recipient(mail: InboundMail, owned: Sequence[str]) -> InboundMail | None:
    """``mail`` as delivered to the first of its recipients that is ``owned`` (an address,
    or ``@domain`` for every address of a domain), or None when it was sent to none."""
    for address in mail.recipients:
        domain = "@" + address.rpartition("@")[2]
        if address in owned or domain in owned:
            return replace(mail, recipient=address)
    return None


def parse_mailgun(form: Mapping[str, str] | Fields) -> InboundMail:
    """A Mailgun route's form; raises ``InvalidValue`` naming the field."""
    fields = mailgun_form(list(form.items()) if isinstance(form, Mapping) else form)
    headers = _headers(fields.message_headers or ())
    text = fields.stripped_text or reply_text(fields.body_plain or "")
    return _mail(
        from_header=fields.from_ or fields.sender or headers.get("from"),
        from_field="from",
        recipient=fields.recipient or headers.get("to"),
        recipient_field="recipient",
        subject=fields.subject or headers.get("subject") or "",
        text=text or reply_text(_html_text(fields.body_html)),
        headers=headers,
    )


def parse_sendgrid(form: Mapping[str, str] | Fields) -> InboundMail:
    """A SendGrid Inbound Parse form; raises ``InvalidValue`` naming the field."""
    fields = sendgrid_form(list(form.items()) if isinstance(form, Mapping) else form)
    parsed = HeaderParser().parsestr(fields.headers)
    headers = {name.lower(): str(value) for name, value in parsed.items()}
    envelope_to = fields.envelope.to if fields.envelope is not None else []
    text = reply_text(fields.text or "") or reply_text(_html_text(fields.html))
    return _mail(
        from_header=fields.from_ or headers.get("from"),
        from_field="from",
        recipient=", ".join(envelope_to) or fields.to or headers.get("to"),
        recipient_field="envelope.to",
        subject=fields.subject or headers.get("subject") or "",
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
        recipients=tuple(dict.fromkeys(a.lower() for a in addresses)),
    )


def _derived_id(
    sender: str, recipient: str, subject: str, text: str, headers: Mapping[str, str]
) -> str:
    """A Message-ID for a mail without one, from its content: a provider's retry of the
    same mail derives the same id (and is deduplicated), two different mails do not."""
    content = "\0".join((sender, recipient, headers.get("date", ""), subject, text))
    return f"<{hashlib.sha256(content.encode()).hexdigest()[:32]}@derived.acf>"


def _ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a header; a bare id without brackets is bracketed. One
    longer than a header line (``MAX_MESSAGE_ID``) is not an id and is left out."""
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if not found and value.strip() and not any(c.isspace() for c in value.strip()):
        found = [f"<{value.strip()}>"]
    return [token for token in found if len(token) <= MAX_MESSAGE_ID]


def _headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Mailgun's ``message-headers``, by lower-cased name (the first of a repeated one)."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        headers.setdefault(name.lower(), value)
    return headers


def _date_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None  # senders write odd dates; the time of receipt orders them then


def _html_text(html: str | None) -> str:
    return html_to_text(html or "")
