"""Channel senders from the configuration: one per channel some tenant can be reached
on, each with every tenant's provider account (WhatsApp per tenant by Meta or Twilio)."""

import httpx

from acf.adapters.channels.email.outbound import EmailAccount, SmtpEmailSender
from acf.adapters.channels.routing import TenantSenders
from acf.adapters.channels.telegram.outbound import TelegramAccount, TelegramSender
from acf.adapters.channels.twilio.outbound import (
    TwilioAccount,
    TwilioSender,
    status_callback_url,
)
from acf.adapters.channels.web import WebChannelSender
from acf.adapters.channels.webhook import WebhookChannelSender
from acf.adapters.channels.whatsapp.outbound import (
    WhatsAppAccount,
    WhatsAppCloudSender,
    WindowTemplate,
)
from acf.bootstrap.agents import capabilities
from acf.config.channels.whatsapp import WhatsAppFields
from acf.config.load import LoadedConfig
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.ports.channel_sender import ChannelSender
from acf.ports.email_threads import EmailThreads


def web_sender(loaded: LoadedConfig, http: httpx.AsyncClient) -> ChannelSender:
    """How web-chat replies leave: POSTed to tenants' delivery URLs, else read by pages."""
    urls = {
        tenant: str(fields.web_delivery_url)
        for tenant, fields in loaded.config.tenants.items()
        if fields.web_delivery_url is not None
    }
    return WebhookChannelSender(http, urls) if urls else WebChannelSender()


def whatsapp_account(
    fields: WhatsAppFields, caps: ChannelCapabilities = DEFAULT_CAPABILITIES[Channel.WHATSAPP]
) -> WhatsAppAccount:
    template = fields.window_template
    return WhatsAppAccount(
        fields.phone_number_id,
        fields.access_token,
        str(fields.api_base_url),
        fields.api_version,
        None
        if template is None
        else WindowTemplate(template.name, template.language, template.text_parameter),
        caps,
    )


def twilio_accounts(loaded: LoadedConfig) -> dict[str, TwilioAccount]:
    """Each tenant's Twilio account; statuses come back when it has a public URL."""
    accounts = {}
    for tenant, fields in loaded.config.tenants.items():
        if (tw := fields.twilio) is None:
            continue
        base = tw.public_base()
        accounts[tenant] = TwilioAccount(
            tw.account_sid,
            tw.auth_token,
            tw.from_number,
            tw.messaging_service_sid,
            tw.whatsapp_from,
            None if base is None else status_callback_url(base, tenant),
            str(tw.api_base_url),
            tw.max_segments,
            capabilities(loaded.source, tenant, fields)[Channel.SMS],
        )
    return accounts


def telegram_accounts(loaded: LoadedConfig) -> dict[str, TelegramAccount]:
    """Each tenant's Telegram bot, with its capabilities."""
    return {
        tenant: TelegramAccount(
            tg.bot_token,
            str(tg.api_base_url),
            capabilities(loaded.source, tenant, fields)[Channel.TELEGRAM],
        )
        for tenant, fields in loaded.config.tenants.items()
        if (tg := fields.telegram) is not None
    }


def email_accounts(loaded: LoadedConfig) -> dict[str, EmailAccount]:
    """Each tenant's support address and the SMTP server its replies leave through."""
    accounts = {}
    for tenant, fields in loaded.config.tenants.items():
        if (mail := fields.email) is not None:
            smtp = mail.smtp
            accounts[tenant] = EmailAccount(
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
    return accounts


def channel_senders(
    loaded: LoadedConfig, http: httpx.AsyncClient, *, email_threads: EmailThreads | None = None
) -> dict[Channel, ChannelSender]:
    """A sender per channel some tenant can be reached on; ``email_threads``: where
    email replies find what they answer and record their Message-IDs (required when a
    tenant has an email address)."""
    senders: dict[Channel, ChannelSender] = {Channel.WEB: web_sender(loaded, http)}
    accounts = {
        tenant: whatsapp_account(wa, capabilities(loaded.source, tenant, fields)[Channel.WHATSAPP])
        for tenant, fields in loaded.config.tenants.items()
        if (wa := fields.whatsapp) is not None
    }
    whatsapp: dict[str, ChannelSender] = {}
    if accounts:
        cloud = WhatsAppCloudSender(http, accounts)
        whatsapp |= {tenant: cloud for tenant in accounts}
    if twilio := twilio_accounts(loaded):
        senders[Channel.SMS] = sms = TwilioSender(http, twilio)
        whatsapp |= {tenant: sms for tenant, tw in twilio.items() if tw.whatsapp_from}
    if whatsapp:  # per tenant: Meta's Cloud API or Twilio
        senders[Channel.WHATSAPP] = TenantSenders(Channel.WHATSAPP, whatsapp)
    bots = telegram_accounts(loaded)
    if bots:
        senders[Channel.TELEGRAM] = TelegramSender(http, bots)
    if mailboxes := email_accounts(loaded):
        if email_threads is None:
            raise ValueError("email replies need the store's email_threads")
        senders[Channel.EMAIL] = SmtpEmailSender(mailboxes, email_threads)
    return senders
