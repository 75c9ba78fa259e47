"""Telegram as the composition root builds it: one sender for every tenant's bot."""

from collections.abc import Mapping

from acf.channels.provider import ChannelProvider, Reach, SenderDeps, TenantAccount
from acf.channels.telegram.config import TelegramFields
from acf.channels.telegram.outbound import TelegramAccount, TelegramSender
from acf.domain.channels import Channel
from acf.domain.ids import TenantId


def telegram_accounts(
    accounts: Mapping[TenantId, TenantAccount[TelegramFields]],
) -> dict[TenantId, TelegramAccount]:
    """Each tenant's Telegram bot, with its capabilities."""
    return {
        tenant: TelegramAccount(
            account.fields.bot_token,
            str(account.fields.api_base_url),
            account.capabilities[Channel.TELEGRAM],
        )
        for tenant, account in accounts.items()
    }


def _senders(
    accounts: Mapping[TenantId, TenantAccount[TelegramFields]], deps: SenderDeps
) -> list[Reach]:
    bots = telegram_accounts(accounts)
    return [Reach(Channel.TELEGRAM, TelegramSender(deps.http, bots), frozenset(bots))]


TELEGRAM: ChannelProvider[TelegramFields] = ChannelProvider(
    name="telegram",
    channels=frozenset({Channel.TELEGRAM}),
    account=lambda fields: fields.telegram,
    senders=_senders,
)
