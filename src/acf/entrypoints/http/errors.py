"""Errors as JSON: a code, a message and, for invalid input, each field's problem."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from acf.domain.errors import InvalidMessage, InvalidValue, MessageTooLarge, UnknownAgent

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    problems: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message, "problems": problems or []}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.problems, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route"
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{p['field'] or '(body)'}: {p['message']}" for p in problems)
        return error_response(422, "invalid", f"invalid request: {summary}", problems)

    @app.exception_handler(MessageTooLarge)
    async def _too_large(_: Request, exc: MessageTooLarge) -> JSONResponse:
        problems = [{"field": p.path, "message": p.message} for p in exc.problems]
        return error_response(413, "too_large", str(exc), problems)

    @app.exception_handler(InvalidMessage)
    async def _invalid_message(_: Request, exc: InvalidMessage) -> JSONResponse:
        problems = [{"field": p.path, "message": p.message} for p in exc.problems]
        return error_response(422, "invalid", str(exc), problems)

    @app.exception_handler(UnknownAgent)
    async def _unknown_agent(_: Request, exc: UnknownAgent) -> JSONResponse:
        return error_response(404, "unknown_agent", f"this tenant has no agent {exc.agent!r}")

    @app.exception_handler(InvalidValue)
    async def _invalid_value(_: Request, exc: InvalidValue) -> JSONResponse:
        return error_response(422, "invalid", str(exc))
