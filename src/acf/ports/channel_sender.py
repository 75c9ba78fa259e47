"""Channel sender: how the outbox relay hands a reply to a provider (WhatsApp, SMS, ...)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.errors import AcfError
from acf.domain.session_key import SessionKey


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    key: SessionKey
    outbox_id: int
    payload: Mapping[str, Any]
    customer_last_message_at_ms: int | None = None
    """When the customer last wrote from where this goes (the provider's time when it gave
    one): channels with a customer-service window (WhatsApp's 24 hours) decide by it."""
    parts_sent: int = 0
    """Provider messages of this row already accepted by an earlier attempt (a reply cut
    in parts): the sender resumes after them."""


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The provider accepted the message under this id."""

    provider_message_id: str


class DeliveryError(AcfError):
    """The provider did not accept the message.

    ``definite`` means it never will (a 4xx, a blocked number): the row is marked failed.
    Otherwise (a timeout, a 5xx) the outcome is unknown and the relay sends again later.
    ``parts_accepted``: of a reply sent in several provider messages, how many this call
    got accepted before the failure (the retry resumes after them). ``retry_after_ms``:
    how long the provider asked to wait (a 429's ``Retry-After``); the retry waits at
    least that long.
    """

    def __init__(
        self,
        message: str,
        definite: bool,
        parts_accepted: int = 0,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.definite = definite
        self.parts_accepted = parts_accepted
        self.retry_after_ms = retry_after_ms


@runtime_checkable
class ChannelSender(Protocol):
    """Guarantees: ``send`` returns only once the provider accepted the message."""

    async def send(self, message: OutboundMessage) -> SendReceipt: ...


@runtime_checkable
class TypingSender(Protocol):
    """A channel that can show the customer that an answer is being written (and mark their
    last message read, where the provider ties the two together, as WhatsApp does).

    Best effort: the runtime calls it when a turn starts running and again while it runs;
    a failure is logged and changes nothing else.
    """

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        """``last_inbound_id``: the provider id of the newest message of the turn."""
        ...
