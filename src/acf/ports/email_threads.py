"""Email threads: which mails a customer's conversation is made of, by Message-ID.

Threading follows RFC 5322 (``reference/channels.md``): a reply's ``In-Reply-To`` is its
parent's Message-ID and its ``References`` the parent's References (or, without them, the
parent's In-Reply-To) followed by the parent's Message-ID. acf sets its own Message-ID on
every mail it sends and records it here before sending, so a customer's answer to it
names the customer it was sent to, whichever address the answer comes from.

Only Message-IDs acf sent are trusted to name a customer: a customer's own Message-IDs are
chosen by their mail program (or by anyone) and could name another customer's thread.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import TenantId

MAX_REFERENCES = 20
"""References kept on a reply: the thread's first id and the newest ones (RFC 5322 §3.6.4
allows trimming; long threads otherwise grow a header without bound)."""


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """What acf's reply to a customer's latest mail carries."""

    subject: str
    in_reply_to: str
    references: tuple[str, ...]


def reply_references(parent_id: str, parent_references: Sequence[str]) -> tuple[str, ...]:
    """The References of a reply: the parent's, then the parent's Message-ID, trimmed to
    ``MAX_REFERENCES`` by dropping the oldest after the first (pure)."""
    chain = [r for r in parent_references if r != parent_id] + [parent_id]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return tuple(chain)


@runtime_checkable
class EmailThreads(Protocol):
    """Guarantees: recording the same mail twice keeps the first record (a provider's retry
    changes nothing); every read and write is scoped to its tenant."""

    async def record_inbound(
        self,
        tenant: TenantId,
        customer: str,
        message_id: str,
        references: Sequence[str],
        subject: str,
        at_ms: int,
    ) -> None:
        """A mail from ``customer`` (after threading: the customer it joined);
        ``references``: its References, or its In-Reply-To when it has none."""
        ...

    async def record_outbound(
        self,
        tenant: TenantId,
        customer: str,
        message_id: str,
        references: Sequence[str],
        subject: str,
        at_ms: int,
    ) -> None:
        """A Message-ID acf is about to send to ``customer`` (recorded before the send, so
        an answer faster than the send's receipt still finds its customer)."""
        ...

    async def find_customer(
        self, tenant: TenantId, in_reply_to: str | None, references: Sequence[str]
    ) -> str | None:
        """The customer acf sent ``in_reply_to`` to; else the one acf sent the newest of
        ``references`` to; else None."""
        ...

    async def reply_context(self, tenant: TenantId, customer: str) -> ReplyContext | None:
        """Threading for a reply to ``customer``'s latest mail; None if none is recorded."""
        ...
