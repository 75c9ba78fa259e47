"""The web channel: customers' messages and typing signals in (under the tenant's and the
customer's rates: ``ingress_limits``)."""

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from acf.adapters.channels.web import WebChatMessage, parse_web_message
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.session_key import MAX_PART_LENGTH, SessionKey
from acf.domain.signals import TypingSignal
from acf.entrypoints.http import ingress_limits
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.ingress_limits import MessageAccepted
from acf.entrypoints.http.views import ErrorBody, TypingAccepted
from acf.ports.request_log import ReserveRequest, SaveResponse, StoredResponse

router = APIRouter(prefix="/v1", tags=["web channel"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "The tenant has no such agent"},
    413: {"model": ErrorBody, "description": "The body or the text is too large"},
    422: {"model": ErrorBody, "description": "Invalid body (each problem names its field)"},
    429: ingress_limits.RATE_LIMITED,
}


class TypingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(min_length=1, max_length=MAX_PART_LENGTH)
    customer: str = Field(min_length=1, max_length=MAX_PART_LENGTH)
    active: bool = Field(description="True: started typing; false: stopped.")


def _request_hash(body: WebChatMessage) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@router.post(
    "/messages",
    status_code=202,
    response_model=MessageAccepted,
    responses=_ERRORS,
    summary="Post a customer's message (web chat)",
)
async def post_message(
    body: WebChatMessage,
    request: Request,
    tenant: Tenant,
    state: State,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=256,
            description="Same key and same body: the same response again. Same key with "
            "another body: 422.",
        ),
    ] = None,
) -> Any:
    service = state.service
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        earlier = await service.store.requests.find(tenant, idempotency_key)
        if earlier is not None:
            _same_request(earlier, request_hash)
            if earlier.body is not None:
                return _replay(earlier)
    service.ingress.check_recipient(tenant, body.agent)
    message = parse_web_message(tenant, body.model_dump(mode="json"))
    await ingress_limits.admit(state, message.key)
    guards = []
    if idempotency_key is not None:
        guards.append(ReserveRequest(idempotency_key, request_hash, service.clock.now_ms()))
    try:
        accepted = await service.ingress.accept(message, request.state.trace_id, guards)
    except Conflict:
        raise _reused() from None
    service.metrics.message_accepted(tenant, accepted.duplicate)
    result = ingress_limits.accepted_view(accepted)
    if idempotency_key is None:
        return result
    op = SaveResponse(idempotency_key, 202, result.model_dump())
    return _replay((await service.store.uow.commit(tenant, [op])).get(op))


def _reused() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different body; use a new key",
    )


def _same_request(stored: StoredResponse, request_hash: str) -> None:
    if stored.request_hash != request_hash:
        raise _reused()


def _replay(stored: StoredResponse) -> JSONResponse:
    assert stored.body is not None and stored.status_code is not None
    return JSONResponse(dict(stored.body), status_code=stored.status_code)


@router.post(
    "/typing",
    status_code=202,
    response_model=TypingAccepted,
    responses=_ERRORS,
    summary="The customer started or stopped typing (web chat)",
)
async def post_typing(body: TypingBody, tenant: Tenant, state: State) -> TypingAccepted:
    service = state.service
    service.ingress.check_recipient(tenant, body.agent)
    key = SessionKey(tenant, body.agent, body.customer, Channel.WEB)
    await ingress_limits.admit(state, key, "typing")
    await service.runtime.typing(TypingSignal(key, body.active, service.clock.now_ms()))
    session = await service.store.sessions.find_open(tenant, key)
    return TypingAccepted(session_id=None if session is None else session.session_id)
