"""A fake Graph API on loopback: records each POST (path, headers, JSON body) and answers
with a wamid, or with the status and body the test sets."""

import itertools
import json
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from tests.loopback import LoopbackServer, serving


class FakeGraph(LoopbackServer):
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        """Answers for the next requests, in order; then 200 with a new wamid."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__()

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            self.received.append((path, headers, json.loads(raw)))
            if self.answers:
                return self.answers.pop(0)
            wamid = f"wamid.out-{next(self._ids)}"
        return 200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]}

    def bodies(self) -> list[Any]:
        with self._lock:
            return [body for _path, _headers, body in self.received]


def fake_graph() -> AbstractContextManager[FakeGraph]:
    return serving(FakeGraph())
