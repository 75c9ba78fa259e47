"""The Twilio messaging webhooks of a tenant's account: ``/v1/channels/twilio/{tenant}``
(inbound SMS and WhatsApp through Twilio) and ``/v1/channels/twilio/{tenant}/status``
(status callbacks of the messages acf sent).

Both take Twilio's form-encoded POST and check ``X-Twilio-Signature`` over the URL Twilio
requested (``public_url`` + path + query when the tenant sets it, since a proxy changes
what the server sees; else the request URL) and every field received: 401 when it does not
match, nothing stored. A body that is not a form is 400, one missing a field (or a Body
over 1,600 characters) 422 naming the field. The message is stored (deduplicated on
``MessageSid``) before the 200 and its empty TwiML, so Twilio's retries store nothing
twice; the reply goes out later through the Messages API. No API key: the signature is the
credential.
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from acf.adapters.channels.twilio.inbound import parse_form, parse_message, parse_status
from acf.adapters.channels.twilio.signature import SIGNATURE_HEADER, Form, signature_ok
from acf.config.channels.twilio import TwilioFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.entrypoints.http.context import State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody, WebhookAccepted
from acf.service.delivery_statuses import StatusOutcome

router = APIRouter(prefix="/v1/channels/twilio", tags=["twilio"])

FORM_TYPE = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM_TYPE: {
                "schema": {
                    "type": "object",
                    "description": "Twilio's webhook fields (MessageSid, From, To, Body, "
                    "NumMedia...; MessageStatus on status callbacks), all of them signed.",
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}
_COMMON: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not a form"},
    401: {"model": ErrorBody, "description": f"{SIGNATURE_HEADER} is missing or wrong"},
    404: {"model": ErrorBody, "description": "The tenant has no Twilio account"},
    413: {"model": ErrorBody, "description": "The body is over the webhook limit"},
    415: {"model": ErrorBody, "description": f"The body is not {FORM_TYPE}"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid (it is named)"},
    503: {"model": ErrorBody, "description": "The auth token is not set in the environment"},
}
_RECEIVE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    200: {
        "description": "Stored (or already stored): an empty TwiML response",
        "content": {"text/xml": {"schema": {"type": "string"}}},
    },
    429: {"model": ErrorBody, "description": "Over the tenant's message rate; see Retry-After"},
}


def _account(state: State, tenant: str) -> TwilioFields:
    fields = state.service.loaded.config.tenants.get(tenant)
    if fields is None or fields.twilio is None:
        raise ApiError(404, "not_found", f"tenant {tenant} has no Twilio account configured")
    return fields.twilio


def _signed_url(request: Request, account: TwilioFields) -> str:
    """The URL Twilio signed: as requested, or rebuilt on the tenant's public URL."""
    base = account.public_base()
    if base is None:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def _signed_form(request: Request, account: TwilioFields) -> Form:
    """The request's form fields once the signature over them matches."""
    try:
        token = resolve_secrets(account.auth_token, what="twilio")
    except InvalidValue as exc:
        raise ApiError(503, "not_configured", str(exc)) from None
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != FORM_TYPE:
        raise ApiError(415, "unsupported_media_type", f"expected {FORM_TYPE}")
    try:
        form = parse_form(await request.body())
    except InvalidValue as exc:
        raise ApiError(400, "malformed_form", str(exc)) from None
    header = request.headers.get(SIGNATURE_HEADER)
    if not signature_ok(_signed_url(request, account), form, header, token):
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the request")
    return form


@router.post(
    "/{tenant}",
    response_class=Response,
    responses=_RECEIVE,
    openapi_extra=_FORM_BODY,
    summary="Twilio's inbound message webhook (SMS, WhatsApp through Twilio)",
)
async def receive(tenant: str, request: Request, state: State) -> Response:
    account = _account(state, tenant)
    form = await _signed_form(request, account)
    try:
        message = parse_message(tenant, account.agent, form)
    except InvalidValue as exc:
        raise ApiError(422, "invalid_webhook", str(exc)) from None
    service = state.service
    wait_s = await state.limits.admit(tenant)
    if wait_s is not None:
        service.metrics.rate_limited(tenant)
        raise ApiError(
            429,
            "rate_limited",
            f"tenant {tenant} is over its accepted-message rate; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    result = await service.ingress.accept(message, request.state.trace_id)
    service.metrics.message_accepted(tenant, result.duplicate)
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post(
    "/{tenant}/status",
    response_model=WebhookAccepted,
    responses=_COMMON,
    openapi_extra=_FORM_BODY,
    summary="Twilio's status callback for a message acf sent",
)
async def status(tenant: str, request: Request, state: State) -> Any:
    account = _account(state, tenant)
    form = await _signed_form(request, account)
    service = state.service
    try:
        signal = parse_status(tenant, form, service.clock.now_ms())
    except InvalidValue as exc:
        raise ApiError(422, "invalid_webhook", str(exc)) from None
    applied = signal is not None and await service.statuses.apply(signal) is StatusOutcome.APPLIED
    return WebhookAccepted(
        accepted=0,
        duplicates=0,
        statuses_applied=int(applied),
        statuses_ignored=int(not applied),
        skipped=[],
    )
