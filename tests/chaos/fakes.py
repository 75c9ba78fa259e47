"""Small real HTTP servers on loopback for the chaos test, each in a thread of the test
process: a channel provider that records every POST (it does not deduplicate) and a tool
backend that counts requests per ``Idempotency-Key``."""

import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tests.loopback import LoopbackServer


class _Server(LoopbackServer):
    """A POST's body as JSON (None when it is not: a request cut off by a kill -9)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        super().__init__()
        self.httpd.daemon_threads = True

    def answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return self.handle(path, headers, body)

    def handle(
        self, path: str, headers: Mapping[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


class FakeProvider(_Server):
    """The web channel's delivery URL: records per POST the time, the sending instance
    (``host/pid``), the outbox id, tenant, customer and text."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.malformed = 0

    def handle(
        self, path: str, headers: Mapping[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("outbox_id"), int):
            # A request cut off by a kill -9 mid-body: like a real provider, refuse it.
            with self.lock:
                self.malformed += 1
            return 400, {"error": "malformed body"}
        payload = body.get("payload") or {}
        record = {
            "at": time.time(),
            "instance": headers.get("X-Acf-Instance", ""),
            "outbox_id": body.get("outbox_id"),
            "tenant": body.get("tenant"),
            "customer": body.get("customer"),
            "text": payload.get("text") if isinstance(payload, dict) else None,
        }
        with self.lock:
            self.received.append(record)
            n = len(self.received)
        return 200, {"id": f"prov-{n}"}

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


class CountingBackend(_Server):
    """The refund tool's backend: counts requests per Idempotency-Key, answers 200 JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def handle(
        self, path: str, headers: Mapping[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), "")
        with self.lock:
            self.counts[key] += 1
            n = sum(self.counts.values())
        return 200, {"refund_id": f"r{n}", "amount": "10.00", "path": path}

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)
