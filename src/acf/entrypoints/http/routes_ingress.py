"""The web channel: customers' messages and typing signals in."""

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
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody, MessageAccepted, TypingAccepted
from acf.ports.request_log import ReserveRequest, SaveResponse, StoredResponse

router = APIRouter(prefix="/v1", tags=["web channel"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "The tenant has no such agent"},
    413: {"model": ErrorBody, "description": "The body or the text is too large"},
    422: {"model": ErrorBody, "description": "Invalid body (each problem names its field)"},
    429: {"model": ErrorBody, "description": "Over the tenant's message rate; see Retry-After"},
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
    wait_s = await state.limits.admit(tenant)
    if wait_s is not None:
        service.metrics.rate_limited(tenant)
        raise _rate_limited(tenant, "accepted-message", wait_s)
    guards = []
    if idempotency_key is not None:
        guards.append(ReserveRequest(idempotency_key, request_hash, service.clock.now_ms()))
    try:
        accepted = await service.ingress.accept(message, request.state.trace_id, guards)
    except Conflict:
        raise _reused() from None
    service.metrics.message_accepted(tenant, accepted.duplicate)
    result = MessageAccepted(
        message_id=accepted.message_id,
        session_id=accepted.session_id,
        seq=accepted.seq,
        duplicate=accepted.duplicate,
        trace_id=accepted.trace_id,
    )
    if idempotency_key is None:
        return result
    op = SaveResponse(idempotency_key, 202, result.model_dump())
    return _replay((await service.store.uow.commit(tenant, [op])).get(op))


def _rate_limited(tenant: str, what: str, wait_s: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"tenant {tenant} is over its {what} rate; retry in {wait_s} s",
        headers={"Retry-After": str(wait_s)},
    )


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
    wait_s = await state.limits.admit(tenant, "typing")
    if wait_s is not None:
        service.metrics.rate_limited(tenant)
        raise _rate_limited(tenant, "typing-signal", wait_s)
    key = SessionKey(tenant, body.agent, body.customer, Channel.WEB)
    await service.runtime.typing(TypingSignal(key, body.active, service.clock.now_ms()))
    session = await service.store.sessions.find_open(tenant, key)
    return TypingAccepted(session_id=None if session is None else session.session_id)
