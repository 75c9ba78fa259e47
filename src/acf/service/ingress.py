"""Ingress: turn a normalised inbound message into a durable, deduplicated, sequenced one.

The promise behind a 2xx: when ``accept`` returns, the message is committed (on disk at
the store's durability level) with the session's next sequence number, or it is a
re-delivery of a message already stored, whose original identity is returned. Only then
is the session woken (for re-deliveries too). Anything refused raises an
``IngressError`` and stores nothing.

Between the commit and the wake-up the abuse firewall (``acf.service.firewall``) counts and
inspects the message; it may put the session in a cool-down, never un-accept the message:
its failures are logged and the message goes uninspected.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from acf.domain.errors import IngressError, UnknownAgent, UnknownTenant
from acf.domain.ids import MessageId, SessionId, TraceId, new_trace_id
from acf.domain.messages import NewMessage
from acf.ports.clock import Clock
from acf.ports.directory import Directory
from acf.ports.message_log import AppendMessage
from acf.ports.unit_of_work import UnitOfWork, WriteOp
from acf.ports.wakeup import WakeUps
from acf.service.firewall import Firewall

log = structlog.get_logger("acf.ingress")


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: MessageId
    session_id: SessionId
    seq: int
    duplicate: bool
    trace_id: TraceId
    held: str | None = None
    """The session's mode when it is not ``agent`` (cool-down, human, blocked), or the one
    the firewall put it in on this message: stored, answered later or by a person, or
    dropped."""


class Ingress:
    def __init__(
        self,
        directory: Directory,
        uow: UnitOfWork,
        wakeups: WakeUps,
        clock: Clock,
        firewall: Firewall | None = None,
    ) -> None:
        self._directory = directory
        self._uow = uow
        self._wakeups = wakeups
        self._clock = clock
        self._firewall = firewall

    def check_recipient(self, tenant: str, agent: str) -> None:
        """Raise ``UnknownTenant`` / ``UnknownAgent`` for a recipient not configured."""
        if not self._directory.has_tenant(tenant):
            raise UnknownTenant(tenant)
        if not self._directory.has_agent(tenant, agent):
            raise UnknownAgent(tenant, agent)

    async def accept(
        self,
        message: NewMessage,
        trace_id: TraceId | None = None,
        guards: Sequence[WriteOp[Any]] = (),
    ) -> Accepted:
        """``guards`` are committed in the same unit, before the message: if one refuses
        (``Conflict``), the message is not accepted."""
        key = message.key
        self.check_recipient(key.tenant, key.agent)
        trace_id = trace_id or new_trace_id()
        op = AppendMessage(message, self._clock.now_ms(), trace_id)
        result = (await self._uow.commit(key.tenant, [*guards, op])).get(op)
        log.info(
            "message.duplicate" if result.duplicate else "message.accepted",
            tenant=key.tenant,
            session_id=result.session_id,
            trace_id=trace_id,
            seq=result.seq,
            provider_message_id=message.provider_message_id,
            **({} if result.held is None else {"held": result.held}),
        )
        held = result.held
        if self._firewall is not None:
            try:
                held = await self._firewall.after_accept(key, result, trace_id) or held
            except Exception:  # the message is committed: a firewall fault never refuses it
                log.exception(
                    "firewall.failed",
                    tenant=key.tenant,
                    session_id=result.session_id,
                    trace_id=trace_id,
                )
        accepted = Accepted(
            result.message_id, result.session_id, result.seq, result.duplicate, trace_id, held
        )
        # A re-delivery wakes too: if the first delivery's caller was cancelled after the
        # commit, this is the only wake-up the stored message gets (they are coalesced).
        await self._wakeups.notify(key.tenant, result.session_id)
        return accepted


__all__ = ["Accepted", "Ingress", "IngressError"]
