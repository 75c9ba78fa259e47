"""The Telegram webhook of a tenant's bot: ``POST /v1/channels/telegram/{tenant}``.

Telegram POSTs one Update per request with the ``X-Telegram-Bot-Api-Secret-Token`` set by
``setWebhook`` (401 when it does not match, nothing read); a body that is not JSON is 400,
one that is not an Update 422 naming the field. The update's message is stored
(deduplicated on ``update_id``) before the 200, so Telegram's retries of a non-2xx store
nothing twice. A button press is answered with ``answerCallbackQuery`` after the 200,
best effort, so the client's spinner stops. No API key: the secret token is the credential.
"""

import json
from typing import Any

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, Field

from acf.adapters.channels.telegram.inbound import (
    SECRET_HEADER,
    parse_update,
    secret_token_ok,
    secret_token_valid,
)
from acf.adapters.channels.telegram.outbound import TelegramAccount, TelegramSender
from acf.config.channels.telegram import TelegramFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.entrypoints.http.context import State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody
from acf.ports.channel_sender import DeliveryError

log = structlog.get_logger("acf.telegram")

router = APIRouter(prefix="/v1/channels/telegram", tags=["telegram"])


class TelegramAccepted(BaseModel):
    accepted: int = Field(description="1 when this request stored the update's message.")
    duplicates: int = Field(description="1 when it was already stored (Telegram's retry).")
    skipped: list[str] = Field(description="The update, when acf does not take it, and why.")


_RECEIVE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON"},
    401: {"model": ErrorBody, "description": f"{SECRET_HEADER} is missing or wrong"},
    404: {"model": ErrorBody, "description": "The tenant has no Telegram bot"},
    413: {"model": ErrorBody, "description": "The body is over the webhook limit"},
    422: {"model": ErrorBody, "description": "Not an Update (the field named)"},
    429: {"model": ErrorBody, "description": "Over the tenant's message rate; see Retry-After"},
    503: {"model": ErrorBody, "description": "The secret token is not set, or not valid"},
}


def _account(state: State, tenant: str) -> TelegramFields:
    fields = state.service.loaded.config.tenants.get(tenant)
    if fields is None or fields.telegram is None:
        raise ApiError(404, "not_found", f"tenant {tenant} has no Telegram bot configured")
    return fields.telegram


def _secret_token(reference: str) -> str:
    try:
        value = resolve_secrets(reference, what="telegram")
    except InvalidValue as exc:
        raise ApiError(503, "not_configured", str(exc)) from None
    if not secret_token_valid(value):
        raise ApiError(
            503,
            "not_configured",
            f"telegram: the secret token {reference} must be 1-256 characters of A-Z a-z 0-9 _ -",
        )
    return value


async def _answer_callback(sender: TelegramSender, tenant: str, query_id: str) -> None:
    try:
        await sender.answer_callback(tenant, query_id)
    except DeliveryError as exc:  # best effort: the press is stored either way
        log.warning("telegram.callback_answer_failed", tenant=tenant, error=str(exc))


@router.post(
    "/{tenant}",
    response_model=TelegramAccepted,
    responses=_RECEIVE,
    summary="Telegram's update webhook",
)
async def receive(tenant: str, request: Request, state: State, background: BackgroundTasks) -> Any:
    account = _account(state, tenant)
    secret = _secret_token(account.secret_token)
    if not secret_token_ok(request.headers.get(SECRET_HEADER), secret):
        raise ApiError(401, "bad_secret_token", f"{SECRET_HEADER} is missing or wrong")
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None
    try:
        update = parse_update(tenant, account.agent, payload)
    except InvalidValue as exc:
        raise ApiError(422, "invalid_update", str(exc)) from None
    service = state.service
    accepted = duplicates = 0
    if update.message is not None:
        wait_s = await state.limits.admit(tenant)
        if wait_s is not None:  # Telegram retries the update later
            service.metrics.rate_limited(tenant)
            raise ApiError(
                429,
                "rate_limited",
                f"tenant {tenant} is over its accepted-message rate; retry in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )
        result = await service.ingress.accept(update.message, request.state.trace_id)
        service.metrics.message_accepted(tenant, result.duplicate)
        duplicates, accepted = int(result.duplicate), int(not result.duplicate)
    if update.callback_query_id is not None:
        bot = TelegramAccount(account.bot_token, str(account.api_base_url))
        sender = TelegramSender(service.backends.http, {tenant: bot})
        background.add_task(_answer_callback, sender, tenant, update.callback_query_id)
    skipped = [] if update.skipped is None else [update.skipped]
    return TelegramAccepted(accepted=accepted, duplicates=duplicates, skipped=skipped)
