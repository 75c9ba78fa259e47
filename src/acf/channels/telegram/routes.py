"""The Telegram webhook of a tenant's bot: ``POST /v1/channels/telegram/{tenant}``.

Telegram POSTs one Update per request with the ``X-Telegram-Bot-Api-Secret-Token`` set by
``setWebhook`` (401 when it does not match, nothing read); a body that is not JSON is 400,
one that is not an Update 422 naming the field (a ``date`` outside the bounds of
``docs/channels.md`` included); an update acf does not take is answered 200 with the reason
in ``skipped`` and audited (``webhook.skipped``). The update's message is stored
(deduplicated on ``update_id``) before the 200, so Telegram's retries of a non-2xx store
nothing twice; over the tenant's rate too, with a ``rate.exceeded`` event (a refusal only
brings the update back). A button press is answered with ``answerCallbackQuery`` after the
200, best effort, so the client's spinner stops. No API key: the secret token is the
credential.
"""

from typing import Any

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, Field

from acf.channels.telegram.inbound import (
    SECRET_HEADER,
    parse_update,
    secret_token_ok,
    secret_token_valid,
)
from acf.channels.telegram.outbound import TelegramAccount, TelegramSender
from acf.entrypoints.http import webhook_skips, webhooks
from acf.entrypoints.http.context import State
from acf.entrypoints.http.errors import ApiError
from acf.ports.channel_sender import DeliveryError

log = structlog.get_logger("acf.telegram")

router = APIRouter(prefix="/v1/channels/telegram", tags=["telegram"])


class TelegramAccepted(BaseModel):
    accepted: int = Field(description="1 when this request stored the update's message.")
    duplicates: int = Field(description="1 when it was already stored (Telegram's retry).")
    skipped: list[str] = Field(description="The update, when acf does not take it, and why.")


_RECEIVE: webhooks.Responses = {
    400: webhooks.NOT_JSON,
    401: webhooks.error(f"{SECRET_HEADER} is missing or wrong"),
    404: webhooks.error("The tenant has no Telegram bot"),
    413: webhooks.TOO_LARGE,
    422: webhooks.error("Not an Update (the field named)"),
    503: webhooks.error("The secret token is not set, or not valid"),
}


def _secret_token(reference: str) -> str:
    value = webhooks.secret(reference, "telegram")
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
    account = webhooks.account(state, tenant, lambda fields: fields.telegram, "Telegram bot")
    secret = _secret_token(account.secret_token)
    if not secret_token_ok(request.headers.get(SECRET_HEADER), secret):
        raise ApiError(401, "bad_secret_token", f"{SECRET_HEADER} is missing or wrong")
    raw = await request.body()
    payload = webhooks.json_body(raw)
    now_ms = state.service.clock.now_ms()
    update = webhooks.parsed("invalid_update", parse_update, tenant, account.agent, payload, now_ms)
    accepted = duplicates = 0
    if update.message is not None:
        duplicate = await webhooks.take(state, request, update.message)
        duplicates, accepted = int(duplicate), int(not duplicate)
    if update.callback_query_id is not None:
        bot = TelegramAccount(account.bot_token, str(account.api_base_url))
        sender = TelegramSender(state.service.backends.http, {tenant: bot})
        background.add_task(_answer_callback, sender, tenant, update.callback_query_id)
    skipped = [] if update.skipped is None else [update.skipped]
    await webhook_skips.skipped(state, request, tenant, "telegram", skipped)
    return TelegramAccepted(accepted=accepted, duplicates=duplicates, skipped=skipped)
