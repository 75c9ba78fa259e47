"""``POST /v1/sessions/{id}/agent-answer``: a UI answers an agent service's question for
the customer, out of band (seed 004 Story 6).

Refused with 409 unless the session's open agent session awaits the answer to that
``ask_id``. The answer is then the customer's next message, accepted through ingress like
the web channel's (``routes_ingress``): deduplicated by ``message_id`` (by the question
when none is given, so one question takes one answer), sequenced, audited
(``message.received``), under the tenant's message rate and the customer's
(``ingress_limits``), ``held`` when the session is. Another tenant's session answers 404,
as an unknown one does.
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from acf.adapters.channels.web import MAX_CLIENT_ID_LENGTH, web_provider_id
from acf.domain.ids import SessionId
from acf.domain.messages import MAX_TEXT_LENGTH, NewMessage
from acf.entrypoints.http import ingress_limits
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.ingress_limits import MessageAccepted
from acf.entrypoints.http.views import ErrorBody
from acf.service.agent_answers import NotAwaited, awaiting_session

router = APIRouter(prefix="/v1", tags=["sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "No such session for this tenant"},
    409: {"model": ErrorBody, "description": "The session's agent awaits no answer to ask_id"},
    422: {"model": ErrorBody, "description": "Invalid body (each problem names its field)"},
    429: ingress_limits.RATE_LIMITED,
}
_ANSWER_PREFIX = "answer-"


class AgentAnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ask_id: str = Field(min_length=1, max_length=200, description="The question answered.")
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"\S")
    message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CLIENT_ID_LENGTH,
        description="The UI's id of the answer: the same id again is stored once. Default: "
        "one answer per question.",
    )


@router.post(
    "/sessions/{session_id}/agent-answer",
    status_code=202,
    response_model=MessageAccepted,
    responses=_ERRORS,
    summary="Answer the agent's pending question for the customer (out of band)",
)
async def agent_answer(
    session_id: SessionId, body: AgentAnswerBody, request: Request, tenant: Tenant, state: State
) -> MessageAccepted:
    service = state.service
    try:
        session = await awaiting_session(service.store, tenant, session_id, body.ask_id)
    except NotAwaited as exc:
        raise ApiError(409, "not_awaited", str(exc)) from None
    if session is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    key = session.key
    client_id = body.message_id or f"{_ANSWER_PREFIX}{body.ask_id}"
    message = NewMessage(key, web_provider_id(key.agent, key.customer, client_id), text=body.text)
    await ingress_limits.admit(state, key)
    accepted = await service.ingress.accept(message, request.state.trace_id)
    service.metrics.message_accepted(tenant, accepted.duplicate)
    return ingress_limits.accepted_view(accepted)
