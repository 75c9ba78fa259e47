"""One ``ChannelSender`` over several: each reply goes to its session's channel's sender."""

from collections.abc import Mapping

from acf.domain.channels import Channel
from acf.ports.channel_sender import ChannelSender, DeliveryError, OutboundMessage, SendReceipt


class RoutingSender:
    def __init__(self, senders: Mapping[Channel, ChannelSender]) -> None:
        self._senders = dict(senders)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        sender = self._senders.get(message.key.channel)
        if sender is None:
            # Definite: no configuration change will make this row deliverable by itself.
            raise DeliveryError(f"no sender is configured for channel {message.key.channel}", True)
        return await sender.send(message)
