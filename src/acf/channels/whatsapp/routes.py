"""The WhatsApp Cloud API webhook of a tenant's number: ``/v1/channels/whatsapp/{tenant}``.

GET is Meta's subscription handshake (the challenge echoed when the verify token matches,
else 403). POST carries messages and delivery statuses (applied to the replies they name):
the ``X-Hub-Signature-256`` over the raw body must match the app secret (401 otherwise,
nothing read); a body that is not JSON is 400, one that is not the documented envelope 422
naming the field. Meta retries every non-200 for days, so an item inside the envelope that
acf does not take (malformed, of a kind acf does not take, or addressed to a number that is
not the tenant's ``phone_number_id``) is listed in ``skipped`` with its reason, audited
(``webhook.skipped`` / ``webhook.refused``), and the rest taken. Each message is stored
(deduplicated on its wamid, in provider-timestamp order) before the 200, so Meta's retries
of a batch store nothing twice; over the tenant's rate too (with a ``rate.exceeded``
event): a 429 would bring the batch back, and more load with it. No API key: the
signature is the credential.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from acf.channels.whatsapp.config import WhatsAppFields
from acf.channels.whatsapp.inbound import (
    SIGNATURE_HEADER,
    WhatsAppNumber,
    parse_webhook,
    signature_ok,
    verify_challenge,
)
from acf.entrypoints.http import webhook_audit, webhook_skips, webhooks
from acf.entrypoints.http.context import State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import WebhookAccepted

router = APIRouter(prefix="/v1/channels/whatsapp", tags=["whatsapp"])

_COMMON: webhooks.Responses = {
    404: webhooks.error("The tenant has no WhatsApp number"),
    503: webhooks.SECRET_NOT_SET,
}
_VERIFY: webhooks.Responses = {
    **_COMMON,
    200: {
        "description": "The challenge, as sent",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    403: webhooks.error("Wrong mode or verify token"),
}
_RECEIVE: webhooks.Responses = {
    **_COMMON,
    400: webhooks.NOT_JSON,
    401: webhooks.error(f"{SIGNATURE_HEADER} does not match the body"),
    413: webhooks.TOO_LARGE,
    422: webhooks.error("Not the documented envelope (the field named)"),
}


def _account(state: State, tenant: str) -> WhatsAppFields:
    return webhooks.account(state, tenant, lambda fields: fields.whatsapp, "WhatsApp number")


@router.get(
    "/{tenant}",
    response_model=None,
    responses=_VERIFY,
    summary="Meta's verify handshake",
)
async def verify(tenant: str, request: Request, state: State) -> PlainTextResponse:
    account = _account(state, tenant)
    verify_token = webhooks.secret(account.verify_token, "whatsapp")
    challenge = verify_challenge(request.query_params, verify_token)
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
    app_secret = webhooks.secret(account.app_secret, "whatsapp")
    if not signature_ok(raw, request.headers.get(SIGNATURE_HEADER), app_secret):
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")
    payload = webhooks.json_body(raw)
    number = WhatsAppNumber(tenant, account.agent, account.phone_number_id)
    now_ms = state.service.clock.now_ms()
    batch = webhooks.parsed("invalid_webhook", parse_webhook, number, payload, now_ms)
    # Meta retries every non-200 for days: what is not taken is audited, then answered 200.
    for reason in batch.refused:
        field = {"field": "metadata.phone_number_id"}
        await webhook_audit.refused(state, request, tenant, "whatsapp", reason, field)
    await webhook_skips.skipped(state, request, tenant, "whatsapp", batch.skipped)
    accepted = duplicates = 0
    # Over the tenant's rate too: a refusal would bring the whole batch back, for days.
    for message in batch.messages:
        duplicate = await webhooks.take(state, request, message)
        duplicates += duplicate
        accepted += not duplicate
    applied = await webhooks.apply_statuses(state, batch.statuses)
    return WebhookAccepted(
        accepted=accepted,
        duplicates=duplicates,
        statuses_applied=applied,
        statuses_ignored=len(batch.statuses) - applied,
        skipped=[*batch.refused, *batch.skipped],
    )
