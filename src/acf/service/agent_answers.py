"""Answers to an agent service's question given out of band (``POST
/v1/sessions/{id}/agent-answer``, seed 004 Story 6): a UI that shows the question answers
it for the customer. The answer is then an inbound message of the conversation like any
other (through ingress: deduplicated, sequenced, audited); this module only decides
whether the conversation awaits that answer."""

from acf.domain.agent_sessions import AgentSessionStatus
from acf.domain.errors import Conflict
from acf.domain.ids import SessionId, TenantId
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.ports.store import Store


class NotAwaited(Conflict):
    """The conversation's agent awaits no answer to that question."""


async def awaiting_session(
    store: Store, tenant: TenantId, session_id: SessionId, ask_id: str
) -> SessionRecord | None:
    """The tenant's open session whose agent session awaits the answer to ``ask_id``;
    ``None`` when the tenant has no such session. Raises ``NotAwaited`` when the session is
    closed, has no open agent session, or its pending question is another one."""
    session = await store.sessions.get(tenant, session_id)
    if session is None:
        return None
    if session.status is not SessionStatus.OPEN:
        raise NotAwaited(f"session {session_id} is closed")
    row = await store.agent_sessions.open_for(tenant, session_id)
    if row is None or row.status is not AgentSessionStatus.AWAITING_USER:
        raise NotAwaited(f"no question of an agent is pending in session {session_id}")
    if row.pending_ask_id != ask_id:
        raise NotAwaited(f"the pending question of session {session_id} is not {ask_id!r}")
    return session
