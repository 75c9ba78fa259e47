"""The FastAPI application: the API under ``/v1``, health and metrics, and the pages."""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import acf
from acf.bootstrap import Service
from acf.channels import routers as channel_routers
from acf.entrypoints.http import (
    api_docs,
    errors,
    routes_agent_answer,
    routes_agent_sessions,
    routes_blocks,
    routes_config,
    routes_customers,
    routes_dead_letters,
    routes_handoff,
    routes_ingress,
    routes_operations,
    routes_sessions,
    routes_stream,
)
from acf.entrypoints.http.context import ApiSettings, ApiState
from acf.entrypoints.http.limits import TenantLimits
from acf.entrypoints.http.middleware import (
    BodyLimitMiddleware,
    ErrorMiddleware,
    NulPathMiddleware,
    TraceMiddleware,
)
from acf.entrypoints.http.webhook_paths import WebhookSlashMiddleware

STATIC = Path(str(files("acf.entrypoints.http") / "static"))

DESCRIPTION = """The Agent Conversation Fabric's API. Every `/v1` route is scoped by the
tenant of the API key (`Authorization: Bearer <key>` or `X-API-Key`); another tenant's
objects answer 404. Keys are created with `acf keys create --tenant T`; the configuration
lifecycle (`/v1/config`) needs a key made with `--scope admin`; the inbox, handoffs and the
block list a key made with `--scope operator` (or `admin`), which may also read, but not
write, the customer API."""


def create_app(service: Service, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="acf",
        version=acf.__version__,
        description=DESCRIPTION,
        docs_url=None,  # served with its assets: ``api_docs``
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
    app.include_router(routes_customers.router)
    app.include_router(routes_agent_answer.router)
    app.include_router(routes_agent_sessions.router)
    app.include_router(routes_dead_letters.router)
    app.include_router(routes_config.router)
    app.include_router(routes_handoff.router)
    app.include_router(routes_blocks.router)
    app.include_router(routes_stream.router)
    for router in channel_routers.ROUTERS:  # the providers' webhooks
        app.include_router(router)
    app.include_router(routes_operations.router)
    api_docs.serve_api_docs(app)
    _pages(app)
    # The last added is the outermost: trace, the webhook slash, the body limit, errors.
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(NulPathMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        webhook_bytes=settings.max_webhook_bytes,
    )
    app.add_middleware(WebhookSlashMiddleware)
    app.add_middleware(TraceMiddleware, on_request=service.metrics.request)
    return app


def _pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def chat() -> FileResponse:
        return FileResponse(STATIC / "chat.html")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "console.html")

    @app.get("/console/versions", include_in_schema=False)
    async def console_versions() -> FileResponse:
        return FileResponse(STATIC / "versions.html")

    @app.get("/console/inbox", include_in_schema=False)
    async def console_inbox() -> FileResponse:
        return FileResponse(STATIC / "inbox.html")
