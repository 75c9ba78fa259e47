"""The API docs (/docs) work offline: Swagger UI renders the operations in headless Chromium
while every request to a host other than the server's loopback address is refused."""

from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Server


def test_the_api_docs_render_their_operations_without_internet(
    new_page: Callable[[], Page], acf_server: Server
) -> None:
    page = new_page()
    refused: list[str] = []
    loaded: list[str] = []

    def offline(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            loaded.append(url)
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", offline)
    page.goto("/docs")
    operation = page.locator(".opblock", has_text="/v1/messages").first
    expect(operation).to_be_visible()
    expect(page.locator(".opblock-tag", has_text="web channel")).to_be_visible()
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-body")).to_be_visible()
    assert refused == [], f"the docs asked the internet for {refused}"
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in loaded)
