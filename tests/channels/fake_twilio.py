"""A fake Twilio Messages API on loopback: records each POST (path, headers, form fields in
order) and answers 201 with a new message sid, or with the status and body the test sets."""

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]]

    def field(self, name: str) -> str:
        [value] = [v for k, v in self.form if k == name]
        return value


def message_sid(n: int) -> str:
    return f"SM{n:032x}"


class FakeTwilio:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        """Answers for the next requests, in order; then 201 with a new sid."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True)
                status, answer = owner._answer(Received(self.path, dict(self.headers), form))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _answer(self, received: Received) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.received.append(received)
            if self.answers:
                return self.answers.pop(0)
            sid = message_sid(next(self._ids))
        return 201, {"sid": sid, "status": "queued", "body": received.field("Body")}

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    # A short poll interval: shutdown() waits for the loop to look at its flag.
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
