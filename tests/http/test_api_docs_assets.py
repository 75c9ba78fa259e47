"""``/docs`` refers to no other host: Swagger UI's files come from the installed
``fastapi-offline`` package, served under ``/docs/assets``; the OpenAPI document is the
API's alone (the browser test renders it offline: ``tests/browser/test_api_docs.py``)."""

import re

from acf.entrypoints.http.api_docs import ASSET_FILES, ASSETS
from tests.http.conftest import Api


def test_the_package_ships_every_asset_the_page_names() -> None:
    for name in ASSET_FILES:
        assert (ASSETS / name).stat().st_size > 0, name


async def test_the_docs_page_and_its_assets_come_from_acf(api: Api) -> None:
    async with api.client(None) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert urls, page.text
        assert all(url.startswith("/") for url in urls), urls
        for name in ASSET_FILES:
            assert f"/docs/assets/{name}" in urls
            asset = await client.get(f"/docs/assets/{name}")
            assert asset.status_code == 200 and asset.content == (ASSETS / name).read_bytes()
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if not p.startswith(("/v1/", "/healthz", "/readyz", "/metrics"))]
