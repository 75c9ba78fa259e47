"""``/docs``: Swagger UI over ``/openapi.json``, with its assets served by acf itself.

FastAPI's default page loads Swagger UI from a CDN, so it is blank without internet. The
JavaScript, CSS and favicon come from the ``fastapi-offline`` package's files instead
(Swagger UI's distribution, MIT), mounted under ``/docs/assets``: FastAPI's recipe for
self-hosted docs assets. ReDoc is not served.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def serve_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (and Swagger UI's OAuth2 redirect page) on ``app``, which was made
    with ``docs_url=None``; its OpenAPI document is untouched."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=None if redirect_url is None else f"{root}{redirect_url}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if redirect_url is not None:

        @app.get(redirect_url, include_in_schema=False)
        async def oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
