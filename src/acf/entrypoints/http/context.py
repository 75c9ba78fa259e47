"""What every route needs: the wired service, the API's settings, the caller's tenant."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from acf.bootstrap import Service
from acf.domain.ids import TenantId
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.limits import TenantLimits
from acf.ports.api_keys import ApiKeyRecord

if TYPE_CHECKING:
    from acf.service.config_lifecycle import ConfigLifecycle

ADMIN_SCOPE = "admin"
OPERATOR_SCOPE = "operator"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    max_body_bytes: int = 256 * 1024
    """Bodies above this are refused with 413 before they are read whole."""
    max_webhook_bytes: int = 3 * 1024 * 1024
    """The same for providers' webhooks (``/v1/channels/``): Meta sends up to 3 MB."""
    heartbeat_s: float = 15.0
    """A comment line on every event stream this often, so proxies keep it open."""
    poll_s: float = 1.0
    """How often a stream reads the store even without news from this process."""


@dataclass(slots=True)
class ApiState:
    service: Service
    settings: ApiSettings
    limits: TenantLimits
    lifecycle: "ConfigLifecycle | None" = None
    """The configuration lifecycle's operations (made on first use)."""


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.acf
    return state


async def api_state(request: Request) -> ApiState:
    """The ``State`` dependency. A coroutine: FastAPI runs a plain function's dependency
    on a worker thread, a hop per request for a lookup."""
    return state_of(request)


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Or `X-API-Key: <key>`")


async def key_of(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> ApiKeyRecord:
    """The caller's API key record; 401 without a valid key or for a tenant this
    configuration does not serve. Cached per request, so routes may ask for it twice."""
    key = bearer.credentials if bearer is not None else header
    if not key:
        raise HTTPException(
            401,
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    service = state_of(request).service
    record = await service.api_keys.authenticate(key)
    if record is None:
        raise HTTPException(
            401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    if not service.agents.has_tenant(record.tenant):
        raise HTTPException(
            401,
            f"the API key's tenant {record.tenant!r} is not in this configuration",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return record


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def tenant_of(request: Request, record: Annotated[ApiKeyRecord, Depends(key_of)]) -> TenantId:
    """The tenant the API key belongs to; 401 without a valid key. The customer API's
    routes take it: an ``operator`` key may read them (sessions, timeline, ledger, streams)
    but not write through them (``/messages``, ``/typing``, ``/agent-answer``, the session
    overrides, customers, replays): 403, naming the routes operators have."""
    if record.scope == OPERATOR_SCOPE and request.method not in READ_METHODS:
        raise ApiError(
            403,
            "forbidden",
            f"an {OPERATOR_SCOPE!r} key reads the customer API but does not write to it: "
            f"{request.method} {request.url.path} needs a key of scope 'api' or "
            f"{ADMIN_SCOPE!r}; operators reply with POST /v1/sessions/{{id}}/operator-messages",
        )
    return record.tenant


async def admin_key_of(record: Annotated[ApiKeyRecord, Depends(key_of)]) -> ApiKeyRecord:
    """The caller's key when its scope is ``admin`` (the configuration lifecycle); 403 for
    any other scope, saying which scope is needed and how to get a key with it."""
    if record.scope != ADMIN_SCOPE:
        raise ApiError(
            403,
            "forbidden",
            f"this route needs an API key with scope {ADMIN_SCOPE!r}; this key's scope is "
            f"{record.scope!r} (create one with `acf keys create --tenant {record.tenant} "
            f"--scope {ADMIN_SCOPE}`)",
        )
    return record


async def operator_key_of(record: Annotated[ApiKeyRecord, Depends(key_of)]) -> ApiKeyRecord:
    """The caller's key when its scope is ``operator`` or ``admin`` (the inbox, handoffs,
    the block list); 403 for an ``api`` key, saying how to get an operator key."""
    if record.scope not in (OPERATOR_SCOPE, ADMIN_SCOPE):
        raise ApiError(
            403,
            "forbidden",
            f"this route needs an API key with scope {OPERATOR_SCOPE!r} or {ADMIN_SCOPE!r}; "
            f"this key's scope is {record.scope!r} (create one with `acf keys create --tenant "
            f"{record.tenant} --scope {OPERATOR_SCOPE}`)",
        )
    return record


Tenant = Annotated[TenantId, Depends(tenant_of)]
AdminKey = Annotated[ApiKeyRecord, Depends(admin_key_of)]
"""An ``admin`` key; its ``tenant`` scopes everything the route reads or writes."""
OperatorKey = Annotated[ApiKeyRecord, Depends(operator_key_of)]
"""An ``operator`` or ``admin`` key; its ``tenant`` scopes everything the route touches."""
State = Annotated[ApiState, Depends(api_state)]
