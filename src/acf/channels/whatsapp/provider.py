"""WhatsApp Cloud API (Meta) as the composition root builds it: one sender for every
tenant's number."""

from collections.abc import Mapping

from acf.channels.provider import ChannelProvider, Reach, SenderDeps, TenantAccount
from acf.channels.whatsapp.config import WhatsAppFields
from acf.channels.whatsapp.outbound import WhatsAppAccount, WhatsAppCloudSender, WindowTemplate
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.ids import TenantId


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


def _senders(
    accounts: Mapping[TenantId, TenantAccount[WhatsAppFields]], deps: SenderDeps
) -> list[Reach]:
    numbers = {
        tenant: whatsapp_account(account.fields, account.capabilities[Channel.WHATSAPP])
        for tenant, account in accounts.items()
    }
    cloud = WhatsAppCloudSender(deps.http, numbers)
    return [Reach(Channel.WHATSAPP, cloud, frozenset(numbers))]


WHATSAPP: ChannelProvider[WhatsAppFields] = ChannelProvider(
    name="whatsapp",
    channels=frozenset({Channel.WHATSAPP}),
    account=lambda fields: fields.whatsapp,
    senders=_senders,
)
