"""What a log line may not hold: secret values and request credentials, and more than
``MAX_LINE_BYTES``.

Every value of a log event passes through ``redact_value`` before it is rendered, at any
depth (the ``exception`` of a rendered traceback included):

- a field whose name says it holds a secret (``app_secret``, ``bot_token``,
  ``authorization``, ``x-hub-signature-256``, ``cookie``, ...) is masked whole;
- inside every string, each registered secret value is replaced (``register_secret``:
  ``acf.config.secrets`` registers each ``${NAME}`` value it resolves; a value shorter than
  ``MIN_SECRET_CHARS`` is not registered: masking every ``"abc"`` would garble the log and
  such a value is no credential), and so are the credentials a text can carry by its shape:
  a Telegram bot token (``bot123:AA...`` in a Bot API URL), the password of a URL,
  ``Bearer``/``Basic`` credentials, acf API keys, a signature or secret header's value in a
  repr, a credential in a query string;
- a string longer than ``MAX_VALUE_CHARS`` is cut, with a marker saying how much.

``render_bounded`` then renders the event as one JSON line of at most ``MAX_LINE_BYTES``:
a longer line is rendered again with its values cut shorter, saying so in ``log_line_cut``.
"""

import json
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote

MASK = "***"
MIN_SECRET_CHARS = 6
MAX_VALUE_CHARS = 4096
MAX_LINE_BYTES = 16 * 1024
MAX_DEPTH = 12

SECRET_NAME_PARTS = (
    "secret",
    "password",
    "passwd",
    "authorization",
    "signature",
    "cookie",
    "signing_key",
    "credential",
    "private_key",
    "api_key",
    "apikey",
)
"""A field whose name (lowercase, ``-`` as ``_``) holds one of these is masked whole, as is
``token`` and any name ending in ``_token`` (``bot_token``, ``x_telegram_bot_api_secret_token``)."""

SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-twilio-signature",
    "x-telegram-bot-api-secret-token",
    "x-mailgun-signature",
)

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # A Telegram bot token, in a Bot API URL or alone: 123456789:AAE...
    (re.compile(r"(?:(?<=/bot)|(?<![\w:]))\d{5,}:[A-Za-z0-9_-]{20,}"), MASK),
    # The password of a URL: scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]*:)[^@\s/'\"]+@"), rf"\g<1>{MASK}@"),
    # Credentials of an Authorization header.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    # An acf API key.
    (re.compile(r"\bacf_[A-Za-z0-9_-]{20,}"), f"acf_{MASK}"),
    # A secret header's value in a repr: 'x-hub-signature-256': 'sha256=...' or
    # (b'authorization', b'Bearer ...').
    (
        re.compile(
            r"(['\"]?(?:" + "|".join(re.escape(h) for h in SECRET_HEADERS) + r")['\"]?"
            r"\s*[:,=]\s*b?)(['\"])(?:(?!\2).)*\2",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}\2",
    ),
    # A credential in a query string: ?key=..., &hub.verify_token=..., &signature=...
    (
        re.compile(
            r"([?&](?:key|token|api_key|access_token|hub\.verify_token|secret|password"
            r"|signature)=)[^&\s'\"#]+",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    # An HMAC in hex, as in X-Hub-Signature-256's sha256=<64 hex>.
    (re.compile(r"\b(sha1|sha256)=[0-9a-fA-F]{32,}"), rf"\1={MASK}"),
)


class SecretRegistry:
    """The secret values this process has resolved: each is masked wherever it appears."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str) -> None:
        if len(value) < MIN_SECRET_CHARS:
            return
        forms = {value, quote(value, safe="")}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= {f for f in forms if len(f) >= MIN_SECRET_CHARS}
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        """One alternation of every registered value, the longest first; None when empty."""
        with self._lock:
            if self._pattern is None and self._values:
                self._pattern = secrets_pattern(self._values)
            return self._pattern


REGISTRY = SecretRegistry()


def register_secret(value: str) -> None:
    """Mask ``value`` in every later log line of this process."""
    REGISTRY.register(value)


def secrets_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """The pattern that finds any of ``values`` (the longest first, so none is half masked)."""
    kept = sorted({v for v in values if len(v) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in kept)) if kept else None


def is_secret_name(name: str) -> bool:
    """Whether a field or header named ``name`` holds a secret (its value is masked whole)."""
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    if key == "token" or key.endswith("_token"):
        return True
    return any(part in key for part in SECRET_NAME_PARTS)


def redact_text(text: str, secrets: re.Pattern[str] | None) -> str:
    """``text`` with every secret value found by ``secrets`` and every credential known by
    its shape masked, cut to ``MAX_VALUE_CHARS``."""
    if secrets is not None:
        text = secrets.sub(MASK, text)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return cut(text, MAX_VALUE_CHARS)


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit} chars cut]"


def _name(key: object) -> str | None:
    if isinstance(key, bytes):
        return key.decode("latin-1")
    return key if isinstance(key, str) else None


def redact_value(value: Any, secrets: re.Pattern[str] | None, depth: int = 0) -> Any:
    """``value`` made fit for a log line: JSON types only, secrets masked at any depth."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"), secrets)
    if depth >= MAX_DEPTH:
        return "…[nested too deep]"
    if isinstance(value, Mapping):
        return {
            redact_text(str(k), secrets): _field(k, v, secrets, depth) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        name = _name(items[0]) if len(items) == 2 else None
        if name is not None and is_secret_name(name):  # a header pair: (name, value)
            return [redact_text(name, secrets), MASK]
        return [redact_value(v, secrets, depth + 1) for v in items]
    return redact_text(repr(value), secrets)


def _field(key: object, value: Any, secrets: re.Pattern[str] | None, depth: int) -> Any:
    name = _name(key)
    if name is not None and is_secret_name(name) and value not in (None, "", b""):
        return MASK
    return redact_value(value, secrets, depth + 1)


def redact_event(_logger: object, _method: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """A structlog processor: ``event`` with every secret masked (``redact_value``)."""
    secrets = REGISTRY.pattern()
    return {str(k): _field(k, v, secrets, 0) for k, v in event.items()}


def _dumps(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, default=repr)


def _shrunk(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, Mapping):
        return {k: _shrunk(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        keep = max(4, limit // 16)
        kept = [_shrunk(v, limit) for v in value[:keep]]
        return kept + ([f"…[{len(value) - keep} items cut]"] if len(value) > keep else [])
    return value


ESSENTIAL_FIELDS = ("event", "level", "timestamp", "logger")


def render_bounded(event: Mapping[str, Any], max_bytes: int = MAX_LINE_BYTES) -> str:
    """``event`` as one JSON line of at most ``max_bytes`` (UTF-8): values are cut shorter
    until it fits, and ``log_line_cut`` says how long the line was."""
    line = _dumps(event)
    size = len(line.encode())
    if size <= max_bytes:
        return line
    note = f"the line had {size} bytes; values cut to fit {max_bytes}"
    limit = MAX_VALUE_CHARS
    while limit > 32:
        limit //= 4
        line = _dumps({**_shrunk(dict(event), limit), "log_line_cut": note})
        if len(line.encode()) <= max_bytes:
            return line
    essentials = {k: cut(str(event[k]), 200) for k in ESSENTIAL_FIELDS if k in event}
    return _dumps({**essentials, "log_line_cut": note})


class BoundedJSONRenderer:
    """A structlog renderer: ``render_bounded``."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes

    def __call__(self, _logger: object, _method: str, event: Mapping[str, Any]) -> str:
        return render_bounded(event, self.max_bytes)


def error_text(exc: BaseException) -> str:
    """An exception for a log field: its type and message, without the input values a
    pydantic ``ValidationError`` repeats (they can be anything a caller sent)."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "ValidationError" and callable(errors):
        problems: Collection[Mapping[str, Any]] = errors(include_input=False, include_url=False)
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(value)'}: {e.get('msg')}"
            for e in problems
        )
        return f"ValidationError: {where}"
    return f"{type(exc).__name__}: {exc}"
