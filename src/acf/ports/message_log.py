"""Message log: durable, deduplicated, sequenced inbound messages."""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.ids import MessageId, SessionId, TenantId, TraceId
from acf.domain.messages import AppendResult, InboundMessage, NewMessage
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class AppendMessage(WriteOp[AppendResult]):
    """Store a message once and give it the session's next sequence number.

    Applying it: joins the session the message's (agent, channel, address) is routed to,
    if that session is open (``acf.ports.identities.RouteToSession``: the customer answers
    on the channel a reply fell back to), else the open session of the message's key,
    opening one if there is none; inserts the message under a
    unique constraint on (tenant, channel, provider_message_id); on success assigns
    ``seq = last_seq + 1`` and advances the session's ``last_seq`` in the same transaction,
    and records MESSAGE_RECEIVED. A re-delivery inserts nothing, returns the original's
    identity with ``duplicate=True`` and records MESSAGE_DUPLICATE. Dedupe is the constraint
    itself, never a read followed by a write.
    """

    message: NewMessage
    received_at_ms: int
    trace_id: TraceId


@runtime_checkable
class MessageLog(Protocol):
    """Reads of stored messages.

    Guarantees: sequence numbers of a session are 1, 2, 3, ... without gaps, in arrival
    order (provider timestamps are recorded, not used for ordering); a stored message is
    never changed or removed by the runtime; every read is scoped to ``tenant``. A
    message's ``key`` names its own channel and sender, which differ from the session's
    when it came through a route.
    """

    async def get(self, tenant: TenantId, message_id: MessageId) -> InboundMessage | None: ...

    async def find_by_provider_id(
        self, tenant: TenantId, channel: Channel, provider_message_id: str
    ) -> InboundMessage | None: ...

    async def read_range(
        self, tenant: TenantId, session_id: SessionId, after_seq: int, upto_seq: int
    ) -> list[InboundMessage]:
        """Messages with ``after_seq < seq <= upto_seq``, ordered by ``seq``."""
        ...

    async def recent(
        self, tenant: TenantId, session_id: SessionId, upto_seq: int, limit: int
    ) -> list[InboundMessage]:
        """The last ``limit`` messages with ``seq <= upto_seq``, oldest first (history)."""
        ...
