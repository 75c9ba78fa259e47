"""The FastAPI application: the API under ``/v1``, health and metrics, and the pages."""

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import acf
from acf.bootstrap import Service
from acf.entrypoints.http import (
    errors,
    routes_ingress,
    routes_sessions,
    routes_stream,
    routes_whatsapp,
)
from acf.entrypoints.http.context import ApiSettings, ApiState, State
from acf.entrypoints.http.limits import TenantLimits
from acf.entrypoints.http.middleware import (
    BodyLimitMiddleware,
    ErrorMiddleware,
    TraceMiddleware,
)

STATIC = Path(str(files("acf.entrypoints.http") / "static"))

DESCRIPTION = """The Agent Conversation Fabric's API. Every `/v1` route is scoped by the
tenant of the API key (`Authorization: Bearer <key>` or `X-API-Key`); another tenant's
objects answer 404. Keys are created with `acf keys create --tenant T`."""


def create_app(service: Service, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="acf",
        version=acf.__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    rates = {
        tenant: fields.limits.accepted_messages
        for tenant, fields in service.loaded.config.tenants.items()
    }
    app.state.acf = ApiState(service, settings, TenantLimits(rates, service.rate_storage))
    errors.install(app)
    app.include_router(routes_ingress.router)
    app.include_router(routes_sessions.router)
    app.include_router(routes_stream.router)
    app.include_router(routes_whatsapp.router)
    _operations(app)
    _pages(app)
    # The last added is the outermost: trace, then the body limit, then errors.
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        webhook_bytes=settings.max_webhook_bytes,
    )
    app.add_middleware(TraceMiddleware)
    return app


def _operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
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

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics(state: State) -> Response:
        body, content_type = state.service.metrics.render()
        return Response(body, media_type=content_type)


def _pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def chat() -> FileResponse:
        return FileResponse(STATIC / "chat.html")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "console.html")
