"""One ``ChannelSender`` over several: each reply goes to its session's channel's sender
(``RoutingSender``), and on a channel served by different providers per tenant (WhatsApp:
Meta's Cloud API or Twilio), to its tenant's (``TenantSenders``)."""

from collections.abc import Mapping

from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.domain.session_key import SessionKey
from acf.ports.channel_reach import ChannelReach
from acf.ports.channel_sender import (
    ChannelSender,
    DeliveryError,
    OutboundMessage,
    SendReceipt,
    TypingSender,
)


class RoutingSender:
    def __init__(self, senders: Mapping[Channel, ChannelSender]) -> None:
        self._senders = dict(senders)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        sender = self._senders.get(message.key.channel)
        if sender is None:
            # Definite: no configuration change will make this row deliverable by itself.
            raise DeliveryError(f"no sender is configured for channel {message.key.channel}", True)
        return await sender.send(message)

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        """The channel's typing indicator, when its sender has one (else nothing)."""
        sender = self._senders.get(key.channel)
        if isinstance(sender, TypingSender):
            await sender.show_typing(key, last_inbound_id)

    def reachable(self, tenant: TenantId) -> frozenset[Channel]:
        """The channels with a sender (that reaches ``tenant``, when it says): where the
        fallback ladder may go (``acf.ports.channel_reach``)."""
        return frozenset(
            channel
            for channel, sender in self._senders.items()
            if not isinstance(sender, ChannelReach) or channel in sender.reachable(tenant)
        )


class TenantSenders:
    """One channel's sender per tenant: a tenant without one cannot be reached on it."""

    def __init__(self, channel: Channel, senders: Mapping[TenantId, ChannelSender]) -> None:
        self._channel = channel
        self._senders = dict(senders)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        sender = self._senders.get(message.key.tenant)
        if sender is None:
            raise DeliveryError(
                f"tenant {message.key.tenant} has no {self._channel} sender configured", True
            )
        return await sender.send(message)

    def reachable(self, tenant: TenantId) -> frozenset[Channel]:
        """This channel for the tenants with a sender (``acf.ports.channel_reach``)."""
        return frozenset({self._channel}) if tenant in self._senders else frozenset()

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        """The tenant's provider shows typing when it can (Meta's Cloud API); others show
        nothing (Twilio has no typing indicator)."""
        sender = self._senders.get(key.tenant)
        if isinstance(sender, TypingSender):
            await sender.show_typing(key, last_inbound_id)
