"""``TenantSenders``: one channel's sender per tenant (WhatsApp by Meta or by Twilio)."""

from dataclasses import dataclass, field

import pytest

from acf.adapters.channels.routing import RoutingSender, TenantSenders
from acf.domain.channels import Channel
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt


@dataclass
class RecordingSender:
    name: str
    sent: list[OutboundMessage] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.sent.append(message)
        return SendReceipt(f"{self.name}-{len(self.sent)}")


@dataclass
class TypingRecordingSender(RecordingSender):
    typing: list[tuple[SessionKey, str]] = field(default_factory=list)

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        self.typing.append((key, last_inbound_id))


def message(tenant: str) -> OutboundMessage:
    return OutboundMessage(SessionKey(tenant, "support", "14158675310", Channel.WHATSAPP), 1, {})


async def test_each_tenant_s_reply_goes_to_its_own_sender() -> None:
    meta, twilio = TypingRecordingSender("meta"), RecordingSender("twilio")
    senders = TenantSenders(Channel.WHATSAPP, {"acme": meta, "globex": twilio})
    assert (await senders.send(message("globex"))).provider_message_id == "twilio-1"
    assert (await senders.send(message("acme"))).provider_message_id == "meta-1"
    assert [m.key.tenant for m in meta.sent] == ["acme"]
    assert [m.key.tenant for m in twilio.sent] == ["globex"]


async def test_a_tenant_without_a_sender_is_a_definite_failure() -> None:
    senders = TenantSenders(Channel.WHATSAPP, {"acme": RecordingSender("meta")})
    with pytest.raises(DeliveryError, match="tenant initech has no whatsapp sender") as failed:
        await senders.send(message("initech"))
    assert failed.value.definite


async def test_typing_is_shown_by_the_tenant_s_provider_when_it_can() -> None:
    meta, twilio = TypingRecordingSender("meta"), RecordingSender("twilio")
    senders = TenantSenders(Channel.WHATSAPP, {"acme": meta, "globex": twilio})
    await senders.show_typing(message("acme").key, "wamid.1")
    await senders.show_typing(message("globex").key, "SM1")  # Twilio: nothing to show
    await senders.show_typing(message("initech").key, "x")  # no sender: nothing either
    assert meta.typing == [(message("acme").key, "wamid.1")]


def test_the_channel_reaches_only_the_tenants_with_a_sender() -> None:
    senders = TenantSenders(Channel.WHATSAPP, {"acme": RecordingSender("meta")})
    assert senders.reachable("acme") == {Channel.WHATSAPP}
    assert senders.reachable("initech") == frozenset()
    routing = RoutingSender({Channel.WHATSAPP: senders})
    assert routing.reachable("acme") == {Channel.WHATSAPP}
    assert routing.reachable("initech") == frozenset()


async def test_typing_goes_to_the_channels_sender_when_it_has_one() -> None:
    telegram = TypingRecordingSender("telegram")
    sms = RecordingSender("sms")
    routing = RoutingSender({Channel.TELEGRAM: telegram, Channel.SMS: sms})
    await routing.show_typing(SessionKey("acme", "support", "111", Channel.TELEGRAM), "u-1")
    await routing.show_typing(SessionKey("acme", "support", "+1", Channel.SMS), "SM1")
    await routing.show_typing(SessionKey("acme", "support", "x", Channel.EMAIL), "m-1")
    assert telegram.typing == [(SessionKey("acme", "support", "111", Channel.TELEGRAM), "u-1")]
