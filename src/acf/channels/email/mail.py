"""The reply mail (pure): one plain-text mail per outbox row, threaded under the
customer's latest mail.

From our address (with the display name), To the session's customer, ``Subject: Re: <their
subject>`` (never ``Re: Re:``), our own ``Message-ID``, and ``In-Reply-To`` / ``References``
from the thread store (RFC 5322). Buttons become numbered options. ``Auto-Submitted:
auto-replied`` (RFC 3834) tells the customer's out-of-office responder not to answer an
answer. ``outbound`` sends it by SMTP.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options
from acf.domain.replies import Button
from acf.ports.email_threads import ReplyContext

_REPLY_PREFIX = re.compile(r"^\s*re(\[\d+\])?\s*:", re.IGNORECASE)
NEW_SUBJECT = "Your message"
"""The subject of a mail that answers nothing recorded (a reply before any inbound mail)."""


@dataclass(frozen=True, slots=True)
class EmailAccount:
    address: str
    display_name: str | None
    host: str
    port: int
    username: str | None = None
    """A ``${NAME}`` reference, read from the environment at send time (as ``password``)."""
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout_s: float = 30.0

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, unless it already starts with a reply prefix (pure)."""
    subject = " ".join(subject.split())
    if not subject:
        return NEW_SUBJECT
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def build_mail(
    account: EmailAccount,
    to: str,
    payload: Mapping[str, Any],
    context: ReplyContext | None,
    message_id: str,
    date: str,
) -> EmailMessage:
    """The mail that carries one outbox row (pure); ``InvalidValue`` if it cannot be sent."""
    if payload.get("media"):
        raise InvalidValue("media replies are not sent by email by acf yet")
    text = str(payload.get("text") or "")
    buttons = [Button(str(b["id"]), str(b["title"])) for b in payload.get("buttons") or []]
    if buttons:
        text = numbered_options(text, buttons)
    if not text.strip():
        raise InvalidValue("the reply has no text to send")
    mail = EmailMessage()
    name = account.display_name
    mail["From"] = formataddr((name, account.address)) if name else account.address
    mail["To"] = to
    mail["Subject"] = reply_subject(context.subject if context else "")
    mail["Date"] = date
    mail["Message-ID"] = message_id
    if context is not None:
        mail["In-Reply-To"] = context.in_reply_to
        mail["References"] = " ".join(context.references)
    mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(text.strip() + "\n")
    return mail
