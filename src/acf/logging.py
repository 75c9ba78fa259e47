"""structlog configuration: JSON lines on stderr, with correlation ids bound by callers.

No line holds a secret or more than 16 KiB (``acf.observability.redaction``): every event
is redacted and bounded, the standard library's records (asyncio, uvicorn, psycopg) too.
Tracebacks show no local variables unless ``ACF_LOG_LOCALS=1`` (a debugging aid; the
locals are redacted as everything else, by field name and by value)."""

import logging
import os
import sys
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import ExcInfo, Processor

from acf.observability.redaction import (
    MAX_VALUE_CHARS,
    BoundedJSONRenderer,
    error_text,
    redact_event,
)

QUIET_LIBRARIES = ("httpx", "httpcore")
"""Their INFO lines print request URLs, and a Telegram bot's token is in its URL's path."""

LOCALS_ENV = "ACF_LOG_LOCALS"
"""``1`` (or ``true``): tracebacks in the log show each frame's local variables, redacted."""


def locals_wanted(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(LOCALS_ENV, "").strip().lower() in ("1", "true", "yes")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """acf's handler on the root logger (replaced when logging is configured again)."""


def exception_formatter(show_locals: bool) -> Any:
    """Tracebacks as dicts, locals only when asked (each at most ``MAX_VALUE_CHARS``, so a
    secret is not cut before it is masked); a pydantic ``ValidationError``'s message
    without the input values it repeats."""
    transform = ExceptionDictTransformer(
        show_locals=show_locals, locals_max_string=MAX_VALUE_CHARS, locals_max_length=20
    )

    def format_exception(exc_info: ExcInfo) -> list[dict[str, Any]]:
        stacks = transform(exc_info)
        safe: dict[str, str] = {}
        exc: BaseException | None = exc_info[1]
        while exc is not None and len(safe) < 50:
            if type(exc).__name__ == "ValidationError":
                safe[str(exc)] = error_text(exc).removeprefix("ValidationError: ")
            exc = exc.__cause__ or exc.__context__
        for stack in stacks:
            value = stack.get("exc_value")
            if isinstance(value, str) and value in safe:
                stack["exc_value"] = safe[value]
        return stacks

    return format_exception


def configure_logging(level: str = "INFO", show_locals: bool | None = None) -> None:
    """JSON lines on stderr at ``level``; ``show_locals`` (default: ``ACF_LOG_LOCALS``)."""
    locals_on = locals_wanted() if show_locals is None else show_locals
    tail: list[Processor] = [
        structlog.processors.ExceptionRenderer(exception_formatter(locals_on)),
        redact_event,
        BoundedJSONRenderer(),
    ]
    _configure_standard_library(level, tail)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _configure_standard_library(level: str, tail: list[Processor]) -> None:
    """The root logger's records through the same redaction, as JSON lines; as
    ``logging.basicConfig``, nothing is added when the root has another handler (a test
    harness's)."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    if ours:
        ours[0].setFormatter(formatter)
    elif not root.handlers:
        handler = _Handler(sys.stderr)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    else:
        return
    root.setLevel(level.upper())
