"""The ASGI middleware on their own: a route's bug is a JSON 500 with the trace headers."""

import httpx
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from acf.entrypoints.http.middleware import ErrorMiddleware, TraceMiddleware

TRACE = "5bf92f3577b34da6a3ce929d0e0e4736"


async def routes(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app (as the router is, inside FastAPI's exception middleware)."""
    if scope["path"] == "/boom":
        raise RuntimeError("a bug")
    await JSONResponse({"ok": True})(scope, receive, send)


def app() -> TraceMiddleware:
    return TraceMiddleware(ErrorMiddleware(routes))


async def test_a_bug_is_a_json_500_carrying_the_trace() -> None:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
        r = await client.get("/boom", headers=headers)
        assert r.status_code == 500
        assert r.json() == {
            "error": "internal",
            "message": "an unexpected error; it was logged",
            "problems": [],
        }
        assert r.headers["x-trace-id"] == TRACE
        ok = await client.get("/fine")
        assert ok.status_code == 200 and len(ok.headers["x-trace-id"]) == 32
