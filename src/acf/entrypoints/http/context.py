"""What every route needs: the wired service, the API's settings, the caller's tenant."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from acf.bootstrap import Service
from acf.domain.ids import TenantId
from acf.entrypoints.http.limits import TenantLimits


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


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.acf
    return state


async def api_state(request: Request) -> ApiState:
    """The ``State`` dependency. A coroutine: FastAPI runs a plain function's dependency
    on a worker thread, a hop per request for a lookup."""
    return state_of(request)


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Or `X-API-Key: <key>`")


async def tenant_of(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> TenantId:
    """The tenant the API key belongs to; 401 without a valid key."""
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
    return record.tenant


Tenant = Annotated[TenantId, Depends(tenant_of)]
State = Annotated[ApiState, Depends(api_state)]
