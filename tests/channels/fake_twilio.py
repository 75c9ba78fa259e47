"""A fake Twilio Messages API on loopback: records each POST (path, headers, form fields in
order) and answers 201 with a new message sid, or with the status and body the test sets."""

import itertools
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tests.loopback import LoopbackServer, serving


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    form: list[tuple[str, str]]

    def field(self, name: str) -> str:
        [value] = [v for k, v in self.form if k == name]
        return value


def message_sid(n: int) -> str:
    return f"SM{n:032x}"


class FakeTwilio(LoopbackServer):
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        """Answers for the next requests, in order; then 201 with a new sid."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # A short poll interval: stop() waits for the loop to look at its flag.
        super().__init__(poll_interval=0.02)

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        form = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True)
        received = Received(path, headers, form)
        with self._lock:
            self.received.append(received)
            if self.answers:
                return self.answers.pop(0)
            sid = message_sid(next(self._ids))
        return 201, {"sid": sid, "status": "queued", "body": received.field("Body")}

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def fake_twilio() -> AbstractContextManager[FakeTwilio]:
    return serving(FakeTwilio())
