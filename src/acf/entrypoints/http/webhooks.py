"""What the providers' webhooks (``/v1/channels/...``) share: the tenant's account with the
provider (404 without one), its secrets (503 when one is not set), a JSON body (400 when it
is not) and the provider parser's verdict on it (422 naming the field), the rate limit
before a message is stored (429 with Retry-After), the store itself, the delivery statuses
applied, and the documentation of those answers.

Each route keeps its own credential check and parser; these pieces are one code so that a
status, its error code and its message mean the same on every channel.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from fastapi import Request

from acf.config.model import TenantFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.messages import NewMessage
from acf.domain.signals import DeliveryStatusSignal
from acf.entrypoints.http.context import ApiState
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody
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
RATE_LIMITED = error("Over the tenant's message rate; see Retry-After")
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


async def admit(state: ApiState, tenant: str) -> None:
    """429 with Retry-After when the tenant is over its accepted-message rate (the provider
    retries later; what it sent before is a duplicate then)."""
    wait_s = await state.limits.admit(tenant)
    if wait_s is not None:
        state.service.metrics.rate_limited(tenant)
        raise ApiError(
            429,
            "rate_limited",
            f"tenant {tenant} is over its accepted-message rate; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )


async def accept(state: ApiState, request: Request, tenant: str, message: NewMessage) -> bool:
    """Stores ``message`` (deduplicated on its provider id): True when it was stored before."""
    service = state.service
    result = await service.ingress.accept(message, request.state.trace_id)
    service.metrics.message_accepted(tenant, result.duplicate)
    return result.duplicate


async def take(state: ApiState, request: Request, tenant: str, message: NewMessage) -> bool:
    """``admit``, then ``accept``: True when the message was stored before."""
    await admit(state, tenant)
    return await accept(state, request, tenant, message)


async def apply_statuses(state: ApiState, statuses: Iterable[DeliveryStatusSignal]) -> int:
    """Applies each delivery status to the reply it names: how many moved one forward."""
    applied = 0
    for status in statuses:
        applied += await state.service.statuses.apply(status) is StatusOutcome.APPLIED
    return applied
