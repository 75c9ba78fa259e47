"""The Twilio messaging webhooks of a tenant's account: ``/v1/channels/twilio/{tenant}``
(inbound SMS and WhatsApp through Twilio) and ``/v1/channels/twilio/{tenant}/status``
(status callbacks of the messages acf sent).

Both take Twilio's form-encoded POST and check ``X-Twilio-Signature`` over the URL Twilio
requested (``public_url`` + path + query when the tenant sets it, since a proxy changes
what the server sees; else the request URL) and every field received: 401 when it does not
match, nothing stored. A body that is not a form is 400, one missing a field (or a Body
over 1,600 characters) 422 naming the field. A signed webhook from another ``AccountSid``,
or a message whose ``To`` is not one of the tenant's senders (``binding``), is 403
``not_tenant_account`` / ``not_tenant_number`` with nothing stored and a ``webhook.refused``
event in the tenant's audit trail (Twilio does not retry a 4xx). The message is stored
(deduplicated on ``MessageSid``) before the 200 and its empty TwiML, so Twilio's retries
store nothing twice; the reply goes out later through the Messages API, from the number it
was sent to. Over the tenant's rate the message is stored and acknowledged all the same,
with a ``rate.exceeded`` event (Twilio does not retry a 429: it would be lost). No API key:
the signature is the credential.
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from acf.channels.twilio.binding import (
    Refusal,
    TwilioNumbers,
    account_refusal,
    message_refusal,
)
from acf.channels.twilio.config import TwilioFields
from acf.channels.twilio.inbound import parse_form, parse_message, parse_status
from acf.channels.twilio.payload import message_form, status_form
from acf.channels.twilio.signature import SIGNATURE_HEADER, Form, signature_ok
from acf.domain.errors import InvalidValue
from acf.entrypoints.http import webhook_audit, webhooks
from acf.entrypoints.http.context import ApiState, State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import WebhookAccepted

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
_COMMON: webhooks.Responses = {
    400: webhooks.NOT_A_FORM,
    401: webhooks.error(f"{SIGNATURE_HEADER} is missing or wrong"),
    403: webhooks.error("Signed, but from another account or to a number the tenant lacks"),
    404: webhooks.error("The tenant has no Twilio account"),
    413: webhooks.TOO_LARGE,
    415: webhooks.error(f"The body is not {FORM_TYPE}"),
    422: webhooks.error("A field is missing or invalid (it is named)"),
    503: webhooks.error("The auth token is not set in the environment"),
}
_RECEIVE: webhooks.Responses = {
    **_COMMON,
    200: {
        "description": "Stored (or already stored): an empty TwiML response",
        "content": {"text/xml": {"schema": {"type": "string"}}},
    },
}


def _account(state: State, tenant: str) -> TwilioFields:
    return webhooks.account(state, tenant, lambda fields: fields.twilio, "Twilio account")


def _signed_url(request: Request, account: TwilioFields) -> str:
    """The URL Twilio signed: as requested, or rebuilt on the tenant's public URL."""
    base = account.public_base()
    if base is None:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


def _numbers(account: TwilioFields) -> TwilioNumbers:
    return TwilioNumbers(
        account.account_sid,
        account.from_number,
        account.whatsapp_from,
        account.messaging_service_sid,
    )


async def _refuse(state: ApiState, request: Request, tenant: str, refusal: Refusal) -> ApiError:
    """Audits the refusal and returns the 403 to raise."""
    data = {"field": refusal.field}
    await webhook_audit.refused(state, request, tenant, "twilio", refusal.reason, data)
    code = "not_tenant_account" if refusal.field == "AccountSid" else "not_tenant_number"
    return ApiError(403, code, refusal.reason)


async def _signed_form(request: Request, account: TwilioFields) -> Form:
    """The request's form fields once the signature over them matches."""
    token = webhooks.secret(account.auth_token, "twilio")
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
    fields = webhooks.parsed("invalid_webhook", message_form, form)
    refusal = message_refusal(_numbers(account), fields)
    if refusal is not None:
        raise await _refuse(state, request, tenant, refusal)
    message = webhooks.parsed("invalid_webhook", parse_message, tenant, account.agent, fields)
    await webhooks.take(state, request, message)
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
    refusal = account_refusal(
        _numbers(account), webhooks.parsed("invalid_webhook", status_form, form)
    )
    if refusal is not None:
        raise await _refuse(state, request, tenant, refusal)
    now_ms = state.service.clock.now_ms()
    signal = webhooks.parsed("invalid_webhook", parse_status, tenant, form, now_ms)
    applied = await webhooks.apply_statuses(state, [] if signal is None else [signal])
    return WebhookAccepted(
        accepted=0,
        duplicates=0,
        statuses_applied=applied,
        statuses_ignored=1 - applied,
        skipped=[],
    )
