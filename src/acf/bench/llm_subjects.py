"""The two ways the LLM benchmark gets an answer streamed from the same fake model, one
sample at a time, each timed with ``time.monotonic()`` (the clock ``FakeOpenAI`` records
its requests with, so a sample's model request is placed on the same line):

- ``SdkBaseline``: the ``openai`` SDK called directly (``AsyncOpenAI``, ``stream=True``),
  what a program without acf pays: from the call to the first content chunk and to the
  stream's end;
- ``WebChatClient``: what a web chat sees of acf: ``POST /v1/messages`` for a new
  customer (a new session each sample), then the session's event stream with drafts, from
  the POST to the first ``reply.draft``, to ``turn.committed`` and to
  ``response.delivered`` (the event the web chat shows the reply on).
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from openai import AsyncOpenAI

STAMPED = ("turn.started", "turn.committed", "response.delivered")
"""The events whose ``at_ms`` a sample keeps: acf's own timeline of the turn."""
FAILURES = frozenset({"turn.failed", "response.failed", "response.fallback"})
"""Events that make an acf sample fail (the run is then reported as incorrect)."""


@dataclass(slots=True)
class Sample:
    """One timed answer; every time is ``time.monotonic()``, None when not reached."""

    tag: str
    """Carried in the customer's text, so the fake server's request is found by it."""
    sent: float = 0.0
    """The SDK call, or the POST, was made."""
    sent_wall: float = 0.0
    """``time.time()`` then: places acf's event stamps (wall-clock ms) on this line."""
    acked: float | None = None
    """acf: the POST's 202 was read."""
    first: float | None = None
    """The first content chunk (SDK) or the first ``reply.draft`` event (acf) was read."""
    first_text: str = ""
    committed: float | None = None
    """acf: ``turn.committed`` was read."""
    done: float | None = None
    """The stream's end (SDK) or ``response.delivered`` (acf) was read."""
    text: str = ""
    """The answer as the SDK streamed it, or as ``response.delivered`` carried it (acf)."""
    stamps: dict[str, int] = field(default_factory=dict)
    """acf: the ``at_ms`` of the turn's first ``turn.started``, ``turn.committed`` and
    ``response.delivered`` (acf's wall clock, ms)."""
    draft_lag_ms: list[int] = field(default_factory=list)
    """acf: per draft, wall-clock ms from its publication (its ``at_ms``) to its reading."""
    error: str | None = None


class SdkBaseline:
    """The ``openai`` SDK straight at the endpoint (one client, warm, no retries)."""

    name = "openai SDK (AsyncOpenAI, stream=True)"

    def __init__(self, base_url: str, model: str, system_prompt: str) -> None:
        self._client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        self._model = model
        self._system = system_prompt

    async def sample(self, tag: str, text: str) -> Sample:
        s = Sample(tag)
        parts: list[str] = []
        s.sent = time.monotonic()
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=[
                    {"role": "system", "content": self._system},
                    {"role": "user", "content": text},
                ],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    if s.first is None:
                        s.first = time.monotonic()
                        s.first_text = delta
                    parts.append(delta)
            s.done = time.monotonic()
        except Exception as exc:  # recorded: the run is then reported as incorrect
            s.error = f"{type(exc).__name__}: {exc}"[:300]
        s.text = "".join(parts)
        return s

    async def aclose(self) -> None:
        await self._client.close()


class WebChatClient:
    """A web chat's calls to an ``acf serve``: post, then follow the session's stream."""

    name = "acf (embedded, kind: llm, web chat over SSE)"

    def __init__(self, base_url: str, key: str, agent: str, timeout_s: float) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        self._agent = agent
        self._timeout_s = timeout_s
        # The POSTs keep their connection; each stream has its own (closed at its end).
        self._posts = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)
        self._streams = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout_s, read=timeout_s)
        )

    async def sample(self, tag: str, customer: str, text: str) -> Sample:
        s = Sample(tag)
        body = {"agent": self._agent, "customer": customer, "client_message_id": tag, "text": text}
        s.sent_wall, s.sent = time.time(), time.monotonic()
        try:
            response = await self._posts.post("/v1/messages", json=body)
            s.acked = time.monotonic()
            if response.status_code != 202:
                s.error = f"POST answered {response.status_code}: {response.text[:200]}"
                return s
            session_id = str(response.json()["session_id"])
            await self._follow(s, session_id)
        except httpx.HTTPError as exc:
            s.error = f"{type(exc).__name__}: {exc}"[:300]
        return s

    async def _follow(self, s: Sample, session_id: str) -> None:
        """Read the session's stream until its reply is delivered (or the turn failed)."""
        url = f"/v1/sessions/{session_id}/stream"
        async with self._streams.stream("GET", url, params={"drafts": "true"}) as response:
            if response.status_code != 200:
                s.error = f"stream answered {response.status_code}"
                return
            kind, data = "", ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and kind:
                    now = time.monotonic()
                    event: dict[str, Any] = json.loads(data) if data else {}
                    kind_now, kind, data = kind, "", ""
                    at_ms = event.get("at_ms")
                    if kind_now in STAMPED and isinstance(at_ms, int):
                        s.stamps.setdefault(kind_now, at_ms)
                    if kind_now == "reply.draft":
                        self._draft(s, event, now)
                    elif kind_now == "turn.committed":
                        s.committed = now
                    elif kind_now == "response.delivered":
                        s.done = now
                        s.text = str((event.get("data") or {}).get("text") or "")
                        return
                    elif kind_now in FAILURES:
                        s.error = f"{kind_now}: {json.dumps(event.get('data'))[:200]}"
                        return

    @staticmethod
    def _draft(s: Sample, event: dict[str, Any], now: float) -> None:
        if s.first is None:
            s.first = now
            s.first_text = str((event.get("data") or {}).get("text") or "")
        at_ms = event.get("at_ms")
        if isinstance(at_ms, int):
            s.draft_lag_ms.append(round(time.time() * 1000) - at_ms)

    async def aclose(self) -> None:
        await self._posts.aclose()
        await self._streams.aclose()
