"""Channel senders from the configuration: one per channel some tenant can be reached
on, built by each provider of ``acf.channels.registry`` from its tenants' accounts; a
channel more than one provider sends on (WhatsApp: Meta's Cloud API or Twilio) goes to
each tenant's provider."""

from collections.abc import Sequence
from typing import TypeVar

import httpx

from acf.adapters.channels.routing import TenantSenders
from acf.adapters.channels.web import WebChannelSender
from acf.adapters.channels.webhook import WebhookChannelSender
from acf.bootstrap.agents import capabilities
from acf.channels.provider import AnyProvider, ChannelProvider, Reach, SenderDeps, TenantAccount
from acf.channels.registry import PROVIDERS
from acf.config.load import LoadedConfig
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.channel_sender import ChannelSender
from acf.ports.email_threads import EmailThreads

Fields = TypeVar("Fields")


def web_sender(loaded: LoadedConfig, http: httpx.AsyncClient) -> ChannelSender:
    """How web-chat replies leave: POSTed to tenants' delivery URLs, else read by pages."""
    urls = {
        tenant: str(fields.web_delivery_url)
        for tenant, fields in loaded.config.tenants.items()
        if fields.web_delivery_url is not None
    }
    return WebhookChannelSender(http, urls) if urls else WebChannelSender()


def tenant_accounts(
    loaded: LoadedConfig, provider: ChannelProvider[Fields]
) -> dict[TenantId, TenantAccount[Fields]]:
    """The tenants' accounts with ``provider``, with their channels' capabilities."""
    accounts = {}
    for tenant, fields in loaded.config.tenants.items():
        account = provider.account(fields)
        if account is not None:
            caps = capabilities(loaded.source, tenant, fields)
            accounts[tenant] = TenantAccount(account, caps)
    return accounts


def channel_senders(
    loaded: LoadedConfig,
    http: httpx.AsyncClient,
    *,
    email_threads: EmailThreads | None = None,
    providers: Sequence[AnyProvider] = PROVIDERS,
) -> dict[Channel, ChannelSender]:
    """A sender per channel some tenant can be reached on; ``email_threads``: where
    email replies find what they answer and record their Message-IDs (required when a
    tenant has an email address)."""
    deps = SenderDeps(http, email_threads)
    reaches: dict[Channel, list[Reach]] = {}
    for provider in providers:
        if accounts := tenant_accounts(loaded, provider):
            for reach in provider.senders(accounts, deps):
                reaches.setdefault(reach.channel, []).append(reach)
    senders: dict[Channel, ChannelSender] = {Channel.WEB: web_sender(loaded, http)}
    for channel, found in reaches.items():
        if sum(channel in provider.channels for provider in providers) > 1:
            by_tenant = {tenant: r.sender for r in found for tenant in r.tenants}
            senders[channel] = TenantSenders(channel, by_tenant)
        else:
            [reach] = found
            senders[channel] = reach.sender
    return senders
