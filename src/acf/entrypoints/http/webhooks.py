"""What the providers' webhooks (``/v1/channels/...``) share: the tenant's account with the
provider (404 without one), its secrets (503 when one is not set), a JSON body (400 when it
is not) and the provider parser's verdict on it (422 naming the field), the tenant's rate
noted (never refused: see ``note_rate``), the store itself, the delivery statuses applied,
and the documentation of those answers.

Each route keeps its own credential check and parser; these pieces are one code so that a
status, its error code and its message mean the same on every channel.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastapi import Request

from acf.config.model import TenantFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.messages import NewMessage
from acf.domain.signals import DeliveryStatusSignal
from acf.entrypoints.http.context import ApiState
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody
from acf.ports.event_store import AppendEvent
from acf.ports.unit_of_work import WriteOp
from acf.service.delivery_statuses import StatusOutcome

Account = TypeVar("Account")
Parsed = TypeVar("Parsed")
Args = ParamSpec("Args")
Responses = dict[int | str, dict[str, Any]]
"""A route's ``responses=``: the answers documented besides its success."""


def error(description: str) -> dict[str, Any]:
    """The documentation of an error answer (an ``ErrorBody``)."""
    return {"model": ErrorBody, "description": description}


NOT_JSON = error("The body is not JSON")
NOT_A_FORM = error("The body is not a form")
TOO_LARGE = error("The body is over the webhook limit")
SECRET_NOT_SET = error("A secret is not set in the environment")


def account(
    state: ApiState, tenant: str, of: Callable[[TenantFields], Account | None], what: str
) -> Account:
    """The tenant's account ``of`` its configuration; 404 when it has none (``what`` names
    it: "WhatsApp number")."""
    fields = state.service.loaded.config.tenants.get(tenant)
    found = None if fields is None else of(fields)
    if found is None:
        raise ApiError(404, "not_found", f"tenant {tenant} has no {what} configured")
    return found


def secret(reference: str, channel: str) -> str:
    """A configured secret (``${NAME}`` read from the environment); 503 when it is not set."""
    try:
        return resolve_secrets(reference, what=channel)
    except InvalidValue as exc:
        raise ApiError(503, "not_configured", str(exc)) from None


def json_body(raw: bytes) -> Any:
    """The body as JSON; 400 when it is not."""
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None


def parsed(
    code: str, parse: Callable[Args, Parsed], *args: Args.args, **kwargs: Args.kwargs
) -> Parsed:
    """``parse(*args, **kwargs)``; 422 with ``code`` when it raises ``InvalidValue`` (whose
    message names the malformed field)."""
    try:
        return parse(*args, **kwargs)
    except InvalidValue as exc:
        raise ApiError(422, code, str(exc)) from None


async def note_rate(state: ApiState, request: Request, message: NewMessage) -> list[WriteOp[Any]]:
    """Counts ``message`` in its tenant's accepted-message rate. Under the rate: nothing to
    add. Over it, the message is taken all the same, and this is the ``rate.exceeded`` event
    ({channel, limit, provider_message_id}) to commit with it (``accept``'s ``guards``; an
    event never refuses): a signed webhook is never answered 429, since Twilio (by default)
    and SendGrid do not retry one, so the message would be lost, and Meta retries every
    non-200 for days, adding load instead of shedding it (docs/channels.md)."""
    tenant = message.key.tenant
    if await state.limits.admit(tenant) is None:
        return []
    data = {
        "channel": message.key.channel.value,
        "limit": state.limits.rate(tenant),
        "provider_message_id": message.provider_message_id,
    }
    correlation = Correlation(tenant, request.state.trace_id)
    event = FabricEvent(EventKind.RATE_EXCEEDED, state.service.clock.now_ms(), correlation, data)
    return [AppendEvent(event)]


async def accept(
    state: ApiState,
    request: Request,
    message: NewMessage,
    guards: Sequence[WriteOp[Any]] = (),
) -> bool:
    """Stores ``message`` (deduplicated on its provider id) with ``guards`` in the same
    unit: True when it was stored before."""
    service = state.service
    result = await service.ingress.accept(message, request.state.trace_id, guards)
    service.metrics.message_accepted(message.key.tenant, result.duplicate)
    return result.duplicate


async def take(state: ApiState, request: Request, message: NewMessage) -> bool:
    """``note_rate``, then ``accept`` with what it noted: True when the message was stored
    before."""
    return await accept(state, request, message, await note_rate(state, request, message))


async def apply_statuses(state: ApiState, statuses: Iterable[DeliveryStatusSignal]) -> int:
    """Applies each delivery status to the reply it names: how many moved one forward."""
    applied = 0
    for status in statuses:
        applied += await state.service.statuses.apply(status) is StatusOutcome.APPLIED
    return applied
