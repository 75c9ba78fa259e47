"""Twilio as the composition root builds it: one sender for SMS and, for the tenants with
a ``whatsapp_from``, WhatsApp; statuses come back when a tenant has a public URL."""

from collections.abc import Mapping

from acf.channels.provider import ChannelProvider, Reach, SenderDeps, TenantAccount
from acf.channels.twilio.config import TwilioFields
from acf.channels.twilio.outbound import TwilioAccount, TwilioSender, status_callback_url
from acf.domain.channels import Channel
from acf.domain.ids import TenantId


def twilio_accounts(
    accounts: Mapping[TenantId, TenantAccount[TwilioFields]],
) -> dict[TenantId, TwilioAccount]:
    """Each tenant's Twilio account; statuses come back when it has a public URL."""
    built = {}
    for tenant, account in accounts.items():
        tw = account.fields
        base = tw.public_base()
        built[tenant] = TwilioAccount(
            tw.account_sid,
            tw.auth_token,
            tw.from_number,
            tw.messaging_service_sid,
            tw.whatsapp_from,
            None if base is None else status_callback_url(base, tenant),
            str(tw.api_base_url),
            tw.max_segments,
            account.capabilities[Channel.SMS],
        )
    return built


def _senders(
    accounts: Mapping[TenantId, TenantAccount[TwilioFields]], deps: SenderDeps
) -> list[Reach]:
    built = twilio_accounts(accounts)
    sms = TwilioSender(deps.http, built)
    reaches = [Reach(Channel.SMS, sms, frozenset(built))]
    whatsapp = frozenset(tenant for tenant, tw in built.items() if tw.whatsapp_from)
    if whatsapp:
        reaches.append(Reach(Channel.WHATSAPP, sms, whatsapp))
    return reaches


TWILIO: ChannelProvider[TwilioFields] = ChannelProvider(
    name="twilio",
    channels=frozenset({Channel.SMS, Channel.WHATSAPP}),
    account=lambda fields: fields.twilio,
    senders=_senders,
)
