"""The HTTP side: a FastAPI app speaking acf's agent service protocol (DESIGN §16).

- ``POST /v1/agents/{profile}/execute``: ``X-API-Key`` (checked when the service has
  one, else 401), ``Idempotency-Key`` (required), ``Last-Event-ID`` (optional), an
  ``ExecuteRequest`` body (400 with a JSON ``error`` when it does not parse); answers
  ``text/event-stream`` with ``X-Agent-Session-Id``, events ``id: 1, 2, ...`` and a
  heartbeat comment every ``heartbeat_s``. What runs is in ``executions.py``.
- ``GET /v1/sessions/{id}``: the agent session's status (``X-API-Key`` too).
- ``GET /health``: ``{"status": "ok"}``, without a key.

Errors answer ``{"error": "<message>"}`` and never echo a header or the body.
"""

import argparse
import hmac
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from openai import AsyncOpenAI
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from acf.pipelines.agent_service.protocol import (
    API_KEY_HEADER,
    EXECUTE_PATH,
    HEALTH_PATH,
    KEY_HEADER,
    LAST_EVENT_HEADER,
    SESSION_HEADER,
    SESSION_PATH,
    ExecuteRequest,
    HealthBody,
    SessionStatusBody,
    event_data,
)

from .agent import PROFILES, Agent
from .conversation import Refused
from .executions import Executions
from .store import Store

MAX_KEY_CHARS = 200
log = logging.getLogger("agent_service")


@dataclass(frozen=True, slots=True)
class Settings:
    llm_base_url: str
    model: str
    db_path: Path
    llm_api_key: str = field(default="unused", repr=False)
    """Local endpoints (Ollama, vLLM) accept any key; the SDK needs one."""
    api_key: str | None = field(default=None, repr=False)
    """The ``X-API-Key`` clients must send (None: no check)."""
    heartbeat_s: float = 15.0
    llm_max_retries: int = 2
    """The openai SDK's own retries of a model call."""
    llm_timeout_s: float = 60.0
    max_model_calls: int = 6
    """Model calls per run before the execution fails with ``too_many_rounds``."""


class AgentService:
    """The service's parts; ``create_app``'s lifespan opens and closes them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.llm = AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
        )
        agent = Agent(
            self.llm, settings.model, self.store, max_model_calls=settings.max_model_calls
        )
        self.executions = Executions(self.store, agent)

    async def start(self) -> None:
        await self.store.open()

    async def aclose(self) -> None:
        await self.executions.aclose()
        await self.llm.close()
        await self.store.close()


def create_app(service: AgentService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.aclose()

    app = FastAPI(title="acf reference agent service", lifespan=lifespan)
    expected_key = service.settings.api_key

    def denied(request: Request) -> Response | None:
        if expected_key is None:
            return None
        given = request.headers.get(API_KEY_HEADER, "")
        if hmac.compare_digest(given.encode(), expected_key.encode()):
            return None
        return _error(401, f"missing or wrong {API_KEY_HEADER}")

    @app.post(EXECUTE_PATH, response_model=None)
    async def execute(profile: str, request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        spec = PROFILES.get(profile)
        if spec is None:
            return _error(404, f"no profile {profile[:60]!r}")
        key = request.headers.get(KEY_HEADER, "").strip()
        if not key or len(key) > MAX_KEY_CHARS:
            return _error(400, f"{KEY_HEADER} is required (at most {MAX_KEY_CHARS} characters)")
        last = request.headers.get(LAST_EVENT_HEADER, "0").strip() or "0"
        if not last.isdigit():
            return _error(400, f"{LAST_EVENT_HEADER} must be an event id (digits)")
        try:
            body = ExecuteRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            where = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            return _error(400, f"invalid body: {', '.join(where)}"[:300])
        trace = request.headers.get("traceparent", "-")
        log.info("execute %s key=%s last_event_id=%s traceparent=%s", profile, key, last, trace)
        try:
            opened = await service.executions.open(spec, key, body, int(last))
        except Refused as exc:
            return _error(exc.status, exc.message)

        async def stream() -> AsyncGenerator[ServerSentEvent, None]:
            async with aclosing(opened.events(request.is_disconnected)) as events:
                async for event_id, event in events:
                    yield ServerSentEvent(
                        data=event_data(event), event=event.type.value, id=str(event_id)
                    )

        return EventSourceResponse(
            stream(),
            headers={SESSION_HEADER: opened.session_id},
            ping=service.settings.heartbeat_s,
            background=BackgroundTask(opened.close),  # also when the stream never started
        )

    @app.get(SESSION_PATH, response_model=None)
    async def session_status(agent_session_id: str, request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        session = await service.store.session(agent_session_id)
        if session is None:
            return _error(404, f"no agent session {agent_session_id[:60]!r}")
        body = SessionStatusBody(
            agent_session_id=session.id,
            status=session.status,
            profile=session.profile,
            pending_ask_id=session.pending_ask_id,
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.get(HEALTH_PATH)
    async def health() -> HealthBody:
        return HealthBody(status="ok")

    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def main(argv: list[str] | None = None) -> None:
    """``python -m examples.agent_service``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.agent_service",
        description="The reference agent service (acf's agent service protocol). Secrets"
        " come from the environment: AGENT_SERVICE_API_KEY (the X-API-Key clients must"
        " send; unset: no check) and LLM_API_KEY or OPENAI_API_KEY (the model endpoint's).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument(
        "--llm-base-url",
        default=os.environ.get("LLM_BASE_URL", "https://api.openai.com/v1"),
        help="an OpenAI-compatible endpoint, ending in /v1 (env LLM_BASE_URL)",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("LLM_MODEL"),
        required="LLM_MODEL" not in os.environ,
        help="the model name (env LLM_MODEL)",
    )
    parser.add_argument("--db", type=Path, default=Path("agent_service.sqlite3"))
    parser.add_argument("--heartbeat-s", type=float, default=15.0)
    parser.add_argument("--max-model-calls", type=int, default=6)
    options = parser.parse_args(argv)
    settings = Settings(
        llm_base_url=options.llm_base_url,
        model=options.model,
        db_path=options.db,
        llm_api_key=os.environ.get("LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "unused",
        api_key=os.environ.get("AGENT_SERVICE_API_KEY") or None,
        heartbeat_s=options.heartbeat_s,
        max_model_calls=options.max_model_calls,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    uvicorn.run(create_app(AgentService(settings)), host=options.host, port=options.port)
