"""The WhatsApp Cloud API webhook of a tenant's number: ``/v1/channels/whatsapp/{tenant}``.

GET is Meta's subscription handshake (the challenge echoed when the verify token matches,
else 403). POST carries messages and delivery statuses (applied to the replies they name):
the ``X-Hub-Signature-256`` over the raw body must match the app secret (401 otherwise,
nothing read); a body that is not the documented envelope is refused with 400/422 naming
the field; each message is stored (deduplicated on its wamid, in provider-timestamp order)
before the 200, so Meta's retries of a batch store nothing twice. No API key: the
signature is the credential.
"""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from acf.adapters.channels.whatsapp.inbound import (
    SIGNATURE_HEADER,
    parse_webhook,
    signature_ok,
    verify_challenge,
)
from acf.config.channels.whatsapp import WhatsAppFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.entrypoints.http.context import State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody, WebhookAccepted
from acf.service.delivery_statuses import StatusOutcome

router = APIRouter(prefix="/v1/channels/whatsapp", tags=["whatsapp"])

_COMMON: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "The tenant has no WhatsApp number"},
    503: {"model": ErrorBody, "description": "A secret is not set in the environment"},
}
_VERIFY: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    200: {
        "description": "The challenge, as sent",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    403: {"model": ErrorBody, "description": "Wrong mode or verify token"},
}
_RECEIVE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    400: {"model": ErrorBody, "description": "The body is not JSON"},
    401: {"model": ErrorBody, "description": "X-Hub-Signature-256 does not match the body"},
    413: {"model": ErrorBody, "description": "The body is over the webhook limit"},
    422: {"model": ErrorBody, "description": "Not the documented envelope (the field named)"},
    429: {"model": ErrorBody, "description": "Over the tenant's message rate; see Retry-After"},
}


def _account(state: State, tenant: str) -> WhatsAppFields:
    fields = state.service.loaded.config.tenants.get(tenant)
    if fields is None or fields.whatsapp is None:
        raise ApiError(404, "not_found", f"tenant {tenant} has no WhatsApp number configured")
    return fields.whatsapp


def _secret(reference: str) -> str:
    try:
        return resolve_secrets(reference, what="whatsapp")
    except InvalidValue as exc:
        raise ApiError(503, "not_configured", str(exc)) from None


@router.get(
    "/{tenant}",
    response_model=None,
    responses=_VERIFY,
    summary="Meta's verify handshake",
)
async def verify(tenant: str, request: Request, state: State) -> PlainTextResponse:
    account = _account(state, tenant)
    challenge = verify_challenge(request.query_params, _secret(account.verify_token))
    if challenge is None:
        raise ApiError(403, "forbidden", "hub.mode or hub.verify_token does not match")
    return PlainTextResponse(challenge)


@router.post(
    "/{tenant}",
    response_model=WebhookAccepted,
    responses=_RECEIVE,
    summary="Meta's message webhook",
)
async def receive(tenant: str, request: Request, state: State) -> Any:
    account = _account(state, tenant)
    raw = await request.body()
    if not signature_ok(raw, request.headers.get(SIGNATURE_HEADER), _secret(account.app_secret)):
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None
    try:
        batch = parse_webhook(tenant, account.agent, payload)
    except InvalidValue as exc:
        raise ApiError(422, "invalid_webhook", str(exc)) from None
    service = state.service
    accepted = duplicates = 0
    for message in batch.messages:
        wait_s = await state.limits.admit(tenant)
        if wait_s is not None:  # Meta retries the batch: what was stored is a duplicate then
            service.metrics.rate_limited(tenant)
            raise ApiError(
                429,
                "rate_limited",
                f"tenant {tenant} is over its accepted-message rate; retry in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )
        result = await service.ingress.accept(message, request.state.trace_id)
        service.metrics.message_accepted(tenant, result.duplicate)
        duplicates += result.duplicate
        accepted += not result.duplicate
    applied = 0
    for status in batch.statuses:
        applied += await service.statuses.apply(status) is StatusOutcome.APPLIED
    return WebhookAccepted(
        accepted=accepted,
        duplicates=duplicates,
        statuses_applied=applied,
        statuses_ignored=len(batch.statuses) - applied,
        skipped=batch.skipped,
    )
