"""A fake Graph API on loopback: records each POST (path, headers, JSON body) and answers
with a wamid, or with the status and body the test sets."""

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGraph:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        """Answers for the next requests, in order; then 200 with a new wamid."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = owner._answer(self.path, dict(self.headers.items()), raw)
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

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            self.received.append((path, headers, json.loads(raw)))
            if self.answers:
                return self.answers.pop(0)
            wamid = f"wamid.out-{next(self._ids)}"
        return 200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]}

    def bodies(self) -> list[Any]:
        with self._lock:
            return [body for _path, _headers, body in self.received]


@contextmanager
def fake_graph() -> Iterator[FakeGraph]:
    server = FakeGraph()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
