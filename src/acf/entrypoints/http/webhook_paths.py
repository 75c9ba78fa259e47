"""A provider's webhook answers with or without a trailing slash.

Starlette redirects a path that differs from a route by its trailing slash (307), and the
providers do not follow redirects on POST: a webhook configured as ``…/acme/`` would fail
every delivery. So under ``/v1/channels/`` the slash is dropped before routing, and both
spellings reach the same route.
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from acf.entrypoints.http.middleware import WEBHOOK_PREFIX


def webhook_path(path: str) -> str:
    """``path`` without its trailing slashes when it is a webhook's (a longer path than
    the prefix), else ``path`` as it is."""
    if path.startswith(WEBHOOK_PREFIX) and path.endswith("/"):
        trimmed = path.rstrip("/")
        if len(trimmed) >= len(WEBHOOK_PREFIX):
            return trimmed
    return path


class WebhookSlashMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            trimmed = webhook_path(path)
            if trimmed != path:
                raw = scope.get("raw_path")
                scope = dict(scope, path=trimmed)
                if isinstance(raw, bytes):
                    scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)
