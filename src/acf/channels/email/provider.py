"""Email as the composition root builds it: one SMTP sender for every tenant's support
address, threading its replies through the store's ``EmailThreads``. The sender (and its
SMTP library, the ``email`` extra) is imported only when a tenant has an address."""

from collections.abc import Mapping

from acf.channels.email.config import EmailFields
from acf.channels.email.mail import EmailAccount
from acf.channels.provider import ChannelProvider, Reach, SenderDeps, TenantAccount
from acf.domain.channels import Channel
from acf.domain.ids import TenantId


def email_accounts(
    accounts: Mapping[TenantId, TenantAccount[EmailFields]],
) -> dict[TenantId, EmailAccount]:
    """Each tenant's support address and the SMTP server its replies leave through."""
    built = {}
    for tenant, account in accounts.items():
        mail = account.fields
        smtp = mail.smtp
        built[tenant] = EmailAccount(
            mail.address,
            mail.display_name,
            smtp.host,
            smtp.port,
            smtp.username,
            smtp.password,
            smtp.starttls,
            smtp.use_tls,
            smtp.timeout_s,
        )
    return built


def _senders(
    accounts: Mapping[TenantId, TenantAccount[EmailFields]], deps: SenderDeps
) -> list[Reach]:
    from acf.channels.email.outbound import SmtpEmailSender

    mailboxes = email_accounts(accounts)
    if deps.email_threads is None:
        raise ValueError("email replies need the store's email_threads")
    sender = SmtpEmailSender(mailboxes, deps.email_threads)
    return [Reach(Channel.EMAIL, sender, frozenset(mailboxes))]


EMAIL: ChannelProvider[EmailFields] = ChannelProvider(
    name="email",
    channels=frozenset({Channel.EMAIL}),
    account=lambda fields: fields.email,
    senders=_senders,
)
