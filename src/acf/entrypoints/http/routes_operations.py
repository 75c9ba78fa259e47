"""Operations: ``/healthz`` (the process is up), ``/readyz`` (its store answers) and
``/metrics`` (Prometheus). The API serves them beside ``/v1``; a worker serves them alone
on ``--metrics-port`` (``operations_app``), since its turns and deliveries are counted in
its own process."""

from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

import acf
from acf.bootstrap import Service
from acf.entrypoints.http.context import ApiSettings, ApiState, State
from acf.entrypoints.http.limits import TenantLimits

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The store answers",
    responses={503: {"description": "The store does not answer"}},
)
async def readyz(state: State) -> Any:
    try:
        await state.service.store.ping()
    except Exception as exc:
        error = type(exc).__name__
        return JSONResponse({"status": "unavailable", "error": error}, status_code=503)
    return {"status": "ready", "config_version": state.service.loaded.version}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(state: State) -> Response:
    body, content_type = state.service.metrics.render()
    return Response(body, media_type=content_type)


def operations_app(service: Service) -> FastAPI:
    """A worker's HTTP: the operations routes only (no API, no pages, no docs)."""
    app = FastAPI(title="acf worker", version=acf.__version__, docs_url=None, redoc_url=None)
    app.state.acf = ApiState(service, ApiSettings(), TenantLimits({}, None))
    app.include_router(router)
    return app
