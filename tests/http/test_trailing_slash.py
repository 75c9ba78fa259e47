"""Every provider webhook answers the same with or without a trailing slash: providers do
not follow a redirect on POST, so a 307 would lose every delivery to ``…/acme/``."""

import httpx
import pytest

from acf.entrypoints.http.webhook_paths import webhook_path
from tests.http.conftest import Api


@pytest.mark.parametrize(
    ("path", "routed"),
    [
        ("/v1/channels/telegram/acme/", "/v1/channels/telegram/acme"),
        ("/v1/channels/email/acme/mailgun//", "/v1/channels/email/acme/mailgun"),
        ("/v1/channels/twilio/acme", "/v1/channels/twilio/acme"),
        ("/v1/channels/", "/v1/channels/"),  # the prefix alone is no webhook
        ("/v1/sessions/", "/v1/sessions/"),  # the API keeps Starlette's behaviour
        ("/docs/", "/docs/"),
    ],
)
def test_a_webhook_path_is_routed_without_its_trailing_slash(path: str, routed: str) -> None:
    assert webhook_path(path) == routed


async def webhook_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, path) of every webhook the API documents, for tenant acme."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    return [
        (method.upper(), path.replace("{tenant}", "acme"))
        for path, operations in paths.items()
        if path.startswith("/v1/channels/")
        for method in operations
    ]


async def test_every_webhook_answers_the_same_with_a_trailing_slash(api: Api) -> None:
    async with api.client(None) as client:
        routes = await webhook_routes(client)
        providers = {path.split("/")[3] for _, path in routes}
        assert providers == {"whatsapp", "twilio", "telegram", "email"}
        for method, path in routes:
            plain = await client.request(method, path, content=b"{}")
            slashed = await client.request(method, f"{path}/", content=b"{}")
            assert slashed.status_code != 307, (method, path)
            # acme has no provider account here: the route itself answers (404 naming what
            # is missing), the same for both spellings.
            assert (slashed.status_code, slashed.json()) == (plain.status_code, plain.json())
            assert "configured" in plain.json()["message"], (method, path, plain.text)
