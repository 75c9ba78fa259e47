"""The abuse firewall's storage: per-customer message counters and the block list.

Counters count every accepted (non-duplicate) message of a customer on a channel in two
buckets: the current minute and the current UTC day; ``peek`` reads them without counting.
They live in the store (both modes) or in Redis when the distributed mode has it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.ids import SessionId, TenantId
from acf.domain.session_key import SessionKey
from acf.ports.unit_of_work import WriteOp

MINUTE_MS = 60_000
DAY_MS = 86_400_000
COOLDOWN_BUCKET = "cooldown"
"""The counter bucket of a customer's cool-downs in a UTC day (``bucket_start_ms`` the
day's start), counted by ``StartCooldown`` when a session enters one."""
REFUSAL_BUCKET = "refusal"
"""The counter bucket of a customer's refusals (one per ``policy_blocks.within_ms``),
counted by ``CountCustomer`` in the refusing turn's unit."""


@dataclass(frozen=True, slots=True)
class RateCounts:
    """A customer's messages on a channel: ``minute`` in the current minute bucket,
    ``prev_minute`` in the one before, ``frac`` the share of the current minute elapsed
    (for a sliding estimate), ``day`` in the current UTC day."""

    minute: int
    prev_minute: int
    frac: float
    day: int

    @property
    def per_minute(self) -> float:
        """The sliding-window estimate of messages in the last 60 s."""
        return self.minute + self.prev_minute * (1.0 - self.frac)


@runtime_checkable
class CustomerRates(Protocol):
    async def hit(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        """Count one message and return the counts including it."""
        ...

    async def peek(
        self, tenant: TenantId, channel: Channel, customer: str, at_ms: int
    ) -> RateCounts:
        """The counts without counting."""
        ...

    async def prune(self, tenant: TenantId, before_ms: int) -> int:
        """Delete the tenant's buckets that started before ``before_ms``; how many."""
        ...

    async def tallies(
        self,
        tenant: TenantId,
        channel: Channel,
        customer: str,
        buckets: Sequence[tuple[str, int]],
    ) -> list[int]:
        """The counts of the firewall's own tallies, ``(bucket, bucket_start_ms)`` each (0
        when absent), read in one read transaction of the store (they always live there,
        ``CountCustomer``)."""
        ...


@dataclass(frozen=True, slots=True)
class Block:
    tenant: TenantId
    block_id: str
    channel: Channel
    customer: str
    reason: str
    created_by: str
    """An operator's key id, or ``firewall`` for an automatic block."""
    created_at_ms: int
    expires_at_ms: int | None = None
    lifted_at_ms: int | None = None
    lifted_by: str | None = None

    def active_at(self, now_ms: int) -> bool:
        return self.lifted_at_ms is None and (
            self.expires_at_ms is None or self.expires_at_ms > now_ms
        )


@dataclass(frozen=True, slots=True)
class BlockCustomer(WriteOp[Block]):
    """Put the customer on the tenant's block list: the open sessions of (channel, customer)
    move to ``blocked`` (a running turn stands down at its commit), and sessions opened
    later open blocked. ``Conflict("blocked")`` when an active block exists. Writes
    ``customer.blocked``."""

    tenant: TenantId
    block_id: str
    channel: Channel
    customer: str
    reason: str
    created_by: str
    at_ms: int
    trace_id: str
    expires_at_ms: int | None = None
    existing_ok: bool = False
    """When an active block exists, return it and change nothing instead of raising
    ``Conflict("blocked")`` (the firewall's automatic block, inside a turn's unit)."""


@dataclass(frozen=True, slots=True)
class LiftBlock(WriteOp[Block]):
    """Lift the block (``lifted_by``; an expiry lifts with ``lifted_by="expiry"``): its
    sessions in ``blocked`` mode go back to ``agent``. ``Conflict("not_found")`` for an
    unknown or already lifted block. Writes ``customer.unblocked``."""

    tenant: TenantId
    block_id: str
    lifted_by: str
    at_ms: int
    trace_id: str


@runtime_checkable
class Blocks(Protocol):
    async def get(self, tenant: TenantId, block_id: str) -> Block | None: ...

    async def active(self, tenant: TenantId, channel: Channel, customer: str) -> Block | None:
        """The customer's active block on the channel, if any."""
        ...

    async def list_blocks(
        self, tenant: TenantId, include_lifted: bool = False, limit: int = 200
    ) -> list[Block]:
        """Newest first."""
        ...

    async def expired(self, tenant: TenantId, now_ms: int, limit: int = 100) -> list[Block]:
        """The tenant's unlifted blocks whose ``expires_at_ms`` passed (the sweep lifts
        them through ``LiftBlock``)."""
        ...


@runtime_checkable
class PolicyBlocks(Protocol):
    """The firewall's ``policy_blocks`` detector, as a turn's commit calls it."""

    async def refusal_ops(
        self, key: SessionKey, session_id: SessionId, at_ms: int, trace_id: str
    ) -> Sequence[WriteOp[Any]]:
        """The ops that count one refusal (a SAFETY_REFUSAL outcome or an enforcement hit)
        of the session's customer in the turn's own unit (a turn superseded, restarted or
        failed before its commit counts nothing), with ``StartCooldown`` or the automatic
        block's ops when the detector fires; none when it is off. Reads only."""
        ...

    async def wake_blocked(self, block: Block) -> None:
        """Wake every open session of the block's customer on its channel (after a unit
        that committed ``BlockCustomer``): their turns stand down, what they hold is
        dropped."""
        ...


@dataclass(frozen=True, slots=True)
class CountCustomer(WriteOp[int]):
    """Add ``by`` to the customer's counter ``bucket`` (at most 8 characters; ``minute`` and
    ``day`` are ``CustomerRates``'s) of the period starting at ``bucket_start_ms``, and return
    its count after; ``by=0`` reads it (0 when absent) and writes nothing. The firewall's own
    tallies (refusals, cool-downs per day) live here, always in the store."""

    tenant: TenantId
    channel: Channel
    customer: str
    bucket: str
    bucket_start_ms: int
    by: int = 1
