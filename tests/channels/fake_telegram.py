"""A fake Telegram Bot API on loopback: records each call (method, token from the path,
JSON body) and answers as the Bot API does, or with the status and body the test scripts
for a method (``{"ok": false, "error_code": ..., "description": ...}``)."""

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


class FakeTelegram:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: dict[str, list[tuple[int, Any]]] = {}
        """Scripted answers per method, in order; then the Bot API's success."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = owner._answer(self.path, raw)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def fail_next(self, method: str, status: int, answer: Any) -> None:
        with self._lock:
            self.answers.setdefault(method, []).append((status, answer))

    def _answer(self, path: str, raw: bytes) -> tuple[int, Any]:
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


@contextmanager
def fake_telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram()
    thread = threading.Thread(
        target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
