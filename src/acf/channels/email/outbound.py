"""Replies out by SMTP (``aiosmtplib``, the ``email`` extra): the mail of ``mail`` to
the tenant's relay.

The Message-ID is recorded before the mail leaves, so the customer's answer finds its
customer even if it arrives before the relay records the send. SMTP semantics: a 5xx reply
(to MAIL, RCPT or DATA, or to AUTH) is permanent, so the row fails definitely; a 4xx, a
timeout, a refused connection or a server without the STARTTLS it is configured with is
not, and the relay sends again (with a new Message-ID: both are recorded). A server that
accepted DATA but whose reply was lost may deliver the mail twice: SMTP has no idempotency
key (the Message-IDs of the two share the outbox row's id, ``acf<outbox_id>``, so a person
can tell).
"""

from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from time import time

from acf.channels.email.mail import EmailAccount, build_mail
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.ids import TenantId
from acf.extras import missing_extra
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt
from acf.ports.email_threads import EmailThreads

try:
    import aiosmtplib
except ImportError as exc:
    raise missing_extra("email", "Email replies (SMTP)") from exc


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
