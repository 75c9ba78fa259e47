"""A fake Telegram Bot API on loopback: records each call (method, token from the path,
JSON body) and answers as the Bot API does, or with the status and body the test scripts
for a method (``{"ok": false, "error_code": ..., "description": ...}``)."""

import itertools
import json
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from tests.loopback import LoopbackServer, serving


@dataclass(frozen=True)
class Call:
    method: str
    token: str
    body: Any


def failure(code: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    """A Bot API error answer, in its documented shape."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


class FakeTelegram(LoopbackServer):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: dict[str, list[tuple[int, Any]]] = {}
        """Scripted answers per method, in order; then the Bot API's success."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__(poll_interval=0.05)

    def fail_next(self, method: str, status: int, answer: Any) -> None:
        with self._lock:
            self.answers.setdefault(method, []).append((status, answer))

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        bot, _, method = path.lstrip("/").partition("/")
        body = json.loads(raw)
        with self._lock:
            self.calls.append(Call(method, bot.removeprefix("bot"), body))
            scripted = self.answers.get(method)
            if scripted:
                return scripted.pop(0)
            if method != "sendMessage":
                return 200, {"ok": True, "result": True}
            message_id = next(self._ids)
        result = {
            "message_id": message_id,
            "chat": {"id": body.get("chat_id"), "type": "private"},
            "date": 1441645532,
            "text": body.get("text"),
        }
        return 200, {"ok": True, "result": result}

    def of(self, method: str) -> list[Any]:
        """The bodies of the calls of ``method`` so far."""
        with self._lock:
            return [call.body for call in self.calls if call.method == method]


def fake_telegram() -> AbstractContextManager[FakeTelegram]:
    return serving(FakeTelegram())
