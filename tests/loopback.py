"""A small real HTTP server on loopback, in a thread of the test process: the scaffolding of
the tests' fake providers (Graph API, Twilio, Telegram, the chaos test's). Each POST's path,
headers and raw body go to the fake's ``answer``; the status and body it returns (bytes, or
anything ``json.dumps`` takes) go back as ``application/json``. The fakes differ only in
what they record and answer."""

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx


class LoopbackServer:
    def __init__(self, poll_interval: float = 0.05) -> None:
        """``poll_interval``: how often the serving loop looks at its shutdown flag (what
        ``stop`` waits for: at 0.5 s, Python's default, every test paid up to that at
        teardown)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # Header names are case-insensitive (clients send them in any case).
                headers = httpx.Headers(list(self.headers.items()))
                status, answer = owner.answer(self.path, headers, raw)
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
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(poll_interval,), daemon=True
        )

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        """The status and body answering one POST (called in the server's threads)."""
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


Server = TypeVar("Server", bound=LoopbackServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """``server`` answering for the block, stopped after it."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
