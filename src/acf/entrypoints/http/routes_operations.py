"""Operations: ``/healthz`` (the process is up), ``/readyz`` (its store answers; its agent
services' health beside) and ``/metrics`` (Prometheus). The API serves them beside
``/v1``; a worker serves them alone on ``--metrics-port`` (``operations_app``), since its
turns and deliveries are counted in its own process."""

from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import acf
from acf.bootstrap import Service
from acf.entrypoints.http.context import ApiSettings, ApiState, State
from acf.entrypoints.http.limits import TenantLimits
from acf.pipelines.agent_service.availability import shared_availability
from acf.pipelines.llm.breaker import CircuitState

router = APIRouter(tags=["operations"])


class AgentServiceHealth(BaseModel):
    """One agent service endpoint as this process sees it."""

    endpoint: str
    """Scheme, host, port and path of its base URL (never a credential)."""
    circuit: str
    """Its circuit breaker: ``closed``, ``half_open`` or ``open``."""
    healthy: bool | None
    """Its last ``GET /health``; null before the first check."""
    checked_at_ms: int | None
    error: str | None
    """Why the last check failed."""


def agent_services(service: Service) -> list[AgentServiceHealth]:
    """The agent service endpoints this process has called or checks, from the process's
    availability registry; each one's ``acf_agent_service_up`` and circuit gauges are set
    from the same reading (an endpoint is up while its circuit is not open and its last
    health check did not fail)."""
    found = []
    for health in shared_availability().snapshot(service.clock.now_ms()):
        up = health.circuit is not CircuitState.OPEN and health.healthy is not False
        service.metrics.set_agent_service_health(health.endpoint, up, health.circuit.value)
        found.append(
            AgentServiceHealth(
                endpoint=health.endpoint,
                circuit=health.circuit.value,
                healthy=health.healthy,
                checked_at_ms=health.checked_at_ms,
                error=health.error,
            )
        )
    return found


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The store answers",
    responses={503: {"description": "The store does not answer"}},
)
async def readyz(state: State) -> Any:
    """Ready (200) while the store answers; 503 when it does not.

    ``agent_services`` lists the agent service endpoints this process knows (their circuit
    and last health check). An agent service that is down does not make acf unready: a
    router falls back to its direct LLM route, and a turn whose call fails for good gets
    the tenant's degradation text and a dead letter; taking the instance out of rotation
    would help nobody, since every instance shares the agent service. Alert on
    ``acf_agent_service_up`` instead (``deploy/prometheus/acf-alerts.yml``).
    """
    services = [s.model_dump() for s in agent_services(state.service)]
    try:
        await state.service.store.ping()
    except Exception as exc:
        body = {"status": "unavailable", "error": type(exc).__name__, "agent_services": services}
        return JSONResponse(body, status_code=503)
    return {
        "status": "ready",
        "config_version": state.service.loaded.version,
        "agent_services": services,
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(state: State) -> Response:
    agent_services(state.service)  # the endpoints' gauges, as of now
    body, content_type = state.service.metrics.render()
    return Response(body, media_type=content_type)


def operations_app(service: Service) -> FastAPI:
    """A worker's HTTP: the operations routes only (no API, no pages, no docs)."""
    app = FastAPI(title="acf worker", version=acf.__version__, docs_url=None, redoc_url=None)
    app.state.acf = ApiState(service, ApiSettings(), TenantLimits({}, None))
    app.include_router(router)
    return app
