"""The load test's Locust users: web-chat customers of one ``acf serve``. Locust loads this
file in its own process (``python -m locust -f …``, started by ``acf.bench.load``); it is
never imported by acf or by the tests (Locust patches the standard library for gevent:
``threading`` and ``time.sleep`` below are greenlets and cooperative sleeps).

Each task is one conversation (``acf.bench.load_script.plan``): the messages are posted
with ``POST /v1/messages`` (a new customer each time), each exchange's reply is read from
the session's SSE stream with drafts, opened after the first 202, or by polling its
events after the exchange's last 202. Each conversation's ``Record`` is appended to the
records file as it ends. Settings come from the environment (``SETTINGS_ENV``,
``KEY_ENV``).
"""

import contextlib
import itertools
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from locust import HttpUser, task
from requests import Response
from requests.exceptions import ConnectionError as BrokenConnection

from acf.bench.load_script import (
    KEY_ENV,
    SETTINGS_ENV,
    Plan,
    Reading,
    Record,
    Seen,
    Timeline,
    UserSettings,
    plan,
)

if SETTINGS_ENV not in os.environ:
    raise RuntimeError(
        f"${SETTINGS_ENV} is not set: run the load test with python -m acf.bench.load"
    )
SETTINGS = UserSettings.model_validate_json(os.environ[SETTINGS_ENV])
_numbers = itertools.count(1)
_records: IO[str] | None = None
STREAM_NAME = "/v1/sessions/[id]/stream"
EVENTS_NAME = "/v1/sessions/[id]/events"


def _why(response: Response) -> str:
    """What broke a request that got no answer (Locust answers it with status 0)."""
    error = getattr(response, "error", None)
    return "" if error is None else f" ({type(error).__name__}: {str(error)[:160]})"


class ConversationFailed(Exception):
    """The conversation cannot go on (a refused POST, a failed turn, no reply in time)."""


def _write(record: Record) -> None:
    global _records
    if _records is None:
        _records = Path(SETTINGS.records).open("a", encoding="utf-8")  # noqa: SIM115
    _records.write(record.model_dump_json() + "\n")
    _records.flush()


class _Stream:
    """The session's SSE stream, read on its own greenlet into a ``Timeline``; ``close``
    ends it from the conversation's greenlet."""

    def __init__(self, user: "WebChatCustomer", session_id: str, timeline: Timeline) -> None:
        self._user = user
        self._url = f"/v1/sessions/{session_id}/stream"
        self.timeline = timeline
        self.changed = threading.Event()
        self._response: Response | None = None
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            response = self._user.client.get(
                self._url,
                params={"drafts": "true"},
                stream=True,
                name=STREAM_NAME,
                timeout=(5, SETTINGS.timeout_s),
            )
            self._response = response
            if self._closed:
                return
            if response.status_code != 200:
                self.timeline.failure = f"stream answered {response.status_code}"
                return
            self._events(response)
            if not self._closed:
                self.timeline.failure = "the stream ended"
        except Exception as exc:  # the closing greenlet's close, or a broken stream
            if not self._closed:
                self.timeline.failure = f"stream broke: {type(exc).__name__}: {exc}"[:300]
        finally:
            self.changed.set()
            if self._response is not None:
                self._response.close()

    def _events(self, response: Response) -> None:
        kind, data = "", ""
        for raw in response.iter_lines():
            line = raw.decode("utf-8")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and kind:
                event: dict[str, Any] = json.loads(data) if data else {}
                event.setdefault("kind", kind)
                kind, data = "", ""
                self.timeline.observe(event, time.monotonic())
                self.changed.set()

    def close(self) -> None:
        """Stop the reader: its socket is shut for reading (urllib3's ``shutdown``, meant
        for another thread), so its blocked read ends; it closes the response itself."""
        self._closed = True
        if self._response is not None:
            with contextlib.suppress(Exception):  # already ended or released
                self._response.raw.shutdown()
        self._reader.join(timeout=5)


class WebChatCustomer(HttpUser):
    """A web-chat customer: one conversation after another, a new session each time."""

    def wait_time(self) -> float:
        return self._rng.uniform(SETTINGS.wait_min_s, SETTINGS.wait_max_s)

    def on_start(self) -> None:
        self.number = next(_numbers)
        self._rng = random.Random(f"{SETTINGS.seed}-{self.number}")
        self.client.headers["Authorization"] = f"Bearer {os.environ.get(KEY_ENV, '')}"

    @task
    def conversation(self) -> None:
        p = plan(self._rng, SETTINGS.mix)
        record = Record(
            user=self.number,
            route=p.route,
            reading=p.reading,
            corrected=p.corrected,
            exchanges=len(p.exchanges),
            planned=p.messages,
            started=time.monotonic(),
        )
        try:
            self._converse(p, record)
            record.completed = True
        except ConversationFailed as exc:
            record.error = str(exc)
        except Exception as exc:  # an HTTP error of the client: recorded, the run goes on
            record.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:  # also when Locust stops the user mid-way (GreenletExit): interrupted
            record.ended = time.monotonic()
            _write(record)

    def _converse(self, p: Plan, record: Record) -> None:
        customer = f"load-{self.number}-{uuid.uuid4().hex[:12]}"
        timeline = Timeline()
        stream: _Stream | None = None
        accepted_at = 0.0
        try:
            for exchange in p.exchanges:
                for text, pause in zip(exchange.texts, exchange.pauses_s, strict=True):
                    if pause:
                        time.sleep(pause)
                    session_id, seq = self._post(customer, f"m{record.accepted}", text, record)
                    accepted_at = time.monotonic()
                    record.session_id, record.last_seq = session_id, seq
                    record.accepted += 1
                    if stream is None and p.reading is Reading.STREAM:
                        stream = _Stream(self, session_id, timeline)
                if stream is not None:
                    self._await_streamed(stream, accepted_at, record.last_seq)
                else:
                    session_id = str(record.session_id)
                    self._poll(session_id, timeline, accepted_at, record.last_seq, record)
                record.seen.append(Seen.of(timeline, accepted_at, record.last_seq))
        finally:
            if stream is not None:
                stream.close()

    def _post(self, customer: str, client_id: str, text: str, record: Record) -> tuple[str, int]:
        body = {
            "agent": SETTINGS.agent,
            "customer": customer,
            "client_message_id": client_id,
            "text": text,
        }
        response = self._send("POST", "/v1/messages", record, json=body)
        if response.status_code != 202:
            raise ConversationFailed(f"POST answered {response.status_code}{_why(response)}")
        accepted = response.json()
        return str(accepted["session_id"]), int(accepted["seq"])

    def _send(self, method: str, url: str, record: Record, **kwargs: Any) -> Response:
        """The request; sent once more, alike, when the connection it was sent on broke
        before an answer (a pooled keep-alive connection the server closed meanwhile: a
        browser re-sends too). A message is safe to re-send: acf deduplicates it by
        ``client_message_id``. Locust still counts the broken attempt as a failure; the
        record counts the re-sends that got their answer."""
        kwargs.setdefault("timeout", (5, SETTINGS.timeout_s))
        response = self.client.request(method, url, **kwargs)
        if response.status_code == 0 and isinstance(
            getattr(response, "error", None), BrokenConnection
        ):
            response = self.client.request(method, url, **kwargs)
            if response.status_code != 0:
                record.resent += 1
        return response

    def _await_streamed(self, stream: _Stream, accepted_at: float, last_seq: int) -> None:
        deadline = accepted_at + SETTINGS.timeout_s
        timeline = stream.timeline
        while timeline.reply(last_seq) is None:
            if timeline.failure is not None:
                raise ConversationFailed(timeline.failure)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConversationFailed(f"no reply within {SETTINGS.timeout_s:g} s")
            stream.changed.wait(left)
            stream.changed.clear()

    def _poll(
        self, session_id: str, timeline: Timeline, accepted_at: float, seq: int, record: Record
    ) -> None:
        deadline = accepted_at + SETTINGS.timeout_s
        url = f"/v1/sessions/{session_id}/events"
        while True:
            params = {"after_id": timeline.last_event_id}
            response = self._send("GET", url, record, params=params, name=EVENTS_NAME)
            read_at = time.monotonic()
            if response.status_code != 200:
                raise ConversationFailed(f"events answered {response.status_code}{_why(response)}")
            for event in response.json()["items"]:
                timeline.observe(event, read_at)
            if timeline.failure is not None:
                raise ConversationFailed(timeline.failure)
            if timeline.reply(seq) is not None:
                return
            if read_at > deadline:
                raise ConversationFailed(f"no reply within {SETTINGS.timeout_s:g} s")
            time.sleep(SETTINGS.poll_s)
