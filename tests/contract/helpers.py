"""Builders shared by the contract suites."""

from acf.domain.channels import Channel
from acf.domain.ids import new_id
from acf.domain.messages import AppendResult, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.turns import Turn, TurnPhase
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store


def key(
    tenant: str = "t1",
    customer: str = "whatsapp:+15550001",
    agent: str = "support",
    channel: Channel = Channel.WHATSAPP,
) -> SessionKey:
    return SessionKey(tenant, agent, customer, channel)


def message(k: SessionKey, provider_id: str | None = None, text: str = "hello") -> NewMessage:
    return NewMessage(key=k, provider_message_id=provider_id or new_id(), text=text)


async def append(
    store: Store,
    k: SessionKey,
    provider_id: str | None = None,
    text: str = "hello",
    at_ms: int = 1_000,
    trace_id: str = "trace-1",
) -> AppendResult:
    op = AppendMessage(message(k, provider_id, text), at_ms, trace_id)
    return (await store.uow.commit(k.tenant, [op])).get(op)


def turn(
    tenant: str,
    session_id: str,
    *,
    from_seq: int = 0,
    to_seq: int = 1,
    fence: int = 1,
    phase: TurnPhase = TurnPhase.RUNNING,
    group_id: str | None = None,
) -> Turn:
    return Turn(
        tenant=tenant,
        turn_id=new_id(),
        session_id=session_id,
        group_id=group_id or new_id(),
        phase=phase,
        from_seq=from_seq,
        to_seq=to_seq,
        attempt=1,
        fence=fence,
        irreversible_started=False,
        trace_id="trace-1",
        created_at_ms=1_000,
        updated_at_ms=1_000,
    )
