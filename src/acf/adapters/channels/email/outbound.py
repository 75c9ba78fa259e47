"""Replies out by SMTP, threaded under the customer's latest mail.

Each reply is one plain-text mail: From our address (with the display name), To the
session's customer, ``Subject: Re: <their subject>`` (never ``Re: Re:``), our own
``Message-ID`` (``email.utils.make_msgid`` on our domain), and ``In-Reply-To`` /
``References`` from the thread store (RFC 5322). Buttons become numbered options. The
Message-ID is recorded before the mail leaves, so the customer's answer finds its
customer even if it arrives before the relay records the send.

``Auto-Submitted: auto-replied`` (RFC 3834) tells the customer's out-of-office responder
not to answer an answer. SMTP semantics: a 5xx reply (to MAIL, RCPT or DATA, or to AUTH)
is permanent, so the row fails definitely; a 4xx, a timeout, a refused connection or a
server without the STARTTLS it is configured with is not, and the relay sends again
(with a new Message-ID: both are recorded). A server that accepted DATA but whose reply
was lost may deliver the mail twice: SMTP has no idempotency key (the Message-IDs of the
two share the outbox row's id, ``acf<outbox_id>``, so a person can tell).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from time import time
from typing import Any

import aiosmtplib

from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options
from acf.domain.ids import TenantId
from acf.domain.replies import Button
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt
from acf.ports.email_threads import EmailThreads, ReplyContext

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


class SmtpEmailSender:
    def __init__(self, accounts: Mapping[TenantId, EmailAccount], threads: EmailThreads) -> None:
        self._accounts = dict(accounts)
        self._threads = threads

    async def send(self, message: OutboundMessage) -> SendReceipt:
        tenant, customer = message.key.tenant, message.key.customer
        account = self._accounts.get(tenant)
        if account is None:
            raise DeliveryError(f"tenant {tenant} has no email address", True)
        context = await self._threads.reply_context(tenant, customer)
        message_id = make_msgid(idstring=f"acf{message.outbox_id}", domain=account.domain)
        try:
            username = _secret(account.username)
            password = _secret(account.password)
            mail = build_mail(
                account, customer, message.payload, context, message_id, formatdate(usegmt=True)
            )
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        references = context.references if context else ()
        await self._threads.record_outbound(
            tenant, customer, message_id, references, str(mail["Subject"]), int(time() * 1000)
        )
        await self._submit(account, mail, username, password)
        return SendReceipt(message_id)

    async def _submit(
        self, account: EmailAccount, mail: EmailMessage, username: str | None, password: str | None
    ) -> None:
        try:
            await aiosmtplib.send(
                mail,
                sender=account.address,
                recipients=[str(mail["To"])],
                hostname=account.host,
                port=account.port,
                username=username,
                password=password,
                use_tls=account.use_tls,
                start_tls=account.starttls,
                timeout=account.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(f"SMTP refused the recipient: {exc}", _permanent(*codes)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP answered {exc.code}: {exc.message}", _permanent(exc.code)
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Refused, timed out, dropped, or no STARTTLS/AUTH where configured: no SMTP
            # reply said "never", so the relay tries again (an operator may fix the server).
            raise DeliveryError(f"SMTP unreachable: {exc!r}", definite=False) from None


def _secret(reference: str | None) -> str | None:
    return None if reference is None else resolve_secrets(reference, what="email smtp")


def _permanent(*codes: int) -> bool:
    return bool(codes) and all(500 <= code < 600 for code in codes)
