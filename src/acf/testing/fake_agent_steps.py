"""What ``FakeAgentService`` does in one execution: a script of steps, run in order.

Event steps (``Think``, ``Tool``, ``Chunks``, ``Complete``, ``Ask``, ``Error``) each
write protocol events; ``Complete``, ``Ask`` and ``Error`` are final (the execution ends
there, later steps are ignored). ``Sleep`` waits, ``Cut`` drops the connection from the
server side, once. ``Reject`` is not a step of the run: it answers an HTTP error to the
first ``times`` requests carrying the execution's key, before any streaming (several
``Reject``\\ s apply one after the other, in script order).

A script without a final step ends its stream cleanly after its last event: the client
sees a stream that ended without a final event.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from acf.pipelines.agent_service.protocol import ExecuteRequest, SideEffect

SideEffectName = SideEffect | Literal["none", "reversible", "irreversible"]


@dataclass(frozen=True, slots=True)
class Think:
    """A ``THOUGHT`` event."""

    text: str


@dataclass(frozen=True, slots=True)
class Tool:
    """``TOOL_START``, the tool running for ``seconds``, then ``TOOL_END``.

    A tool whose ``side_effect`` is not ``none`` starts only once its ``TOOL_START`` has
    been written to every connected stream and the client is still connected. Under one
    execution key a tool runs at most once: a re-run of that execution emits the recorded
    ``TOOL_START``/``TOOL_END`` without running it again.
    """

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    side_effect: SideEffectName = "none"
    status_text: str | None = None
    seconds: float = 0.0
    ok: bool = True
    summary: str | None = None

    def __post_init__(self) -> None:
        SideEffect(self.side_effect)  # ValueError names a bad value at once
        if self.seconds < 0:
            raise ValueError("Tool.seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class Chunks:
    """``text`` as ``parts`` ``ANSWER_CHUNK`` events (fewer when ``text`` is shorter),
    ``interval_s`` apart; their concatenation is ``text``."""

    text: str
    parts: int = 3
    interval_s: float = 0.0

    def __post_init__(self) -> None:
        if self.parts < 1 or self.interval_s < 0:
            raise ValueError("Chunks needs parts >= 1 and interval_s >= 0")

    def pieces(self) -> list[str]:
        """The chunk texts: ``text`` cut into ``parts`` nearly equal pieces, none empty."""
        count = min(self.parts, len(self.text))
        bounds = [len(self.text) * i // count for i in range(count + 1)] if count else []
        return [self.text[a:b] for a, b in pairwise(bounds)]


@dataclass(frozen=True, slots=True)
class Complete:
    """The final ``COMPLETE``; ``answer`` defaults to the chunks streamed so far."""

    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """The final ``ASK_USER``; the agent session then awaits the answer to ``ask_id``
    (default: ``ask-<execution number>-<step index>``, the same on a re-run)."""

    question: str
    options: Sequence[str] | None = None
    ask_id: str | None = None

    def __post_init__(self) -> None:
        if not self.question or self.ask_id == "":
            raise ValueError("Ask needs a question, and an ask_id that is None or not empty")


@dataclass(frozen=True, slots=True)
class Error:
    """The final ``ERROR``; the agent session is then FAILED."""

    code: str
    message: str
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("Sleep.seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class Cut:
    """The server drops the connection here (after the events so far), once; the
    execution goes on, and a request with the same key and ``Last-Event-ID`` resumes."""


@dataclass(frozen=True, slots=True)
class Reject:
    """HTTP ``status`` (JSON ``{"error": message}``, ``Retry-After`` when given) to the
    first ``times`` requests with the execution's key."""

    status: int
    times: int = 1
    retry_after_s: float | None = None
    message: str = "rejected by the fake agent service"

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599 or self.times < 1:
            raise ValueError("Reject needs a 4xx/5xx status and times >= 1")


Step = Think | Tool | Chunks | Complete | Ask | Error | Sleep | Cut | Reject
Responder = Callable[[ExecuteRequest, str], Sequence[Step]]
"""Chooses the steps of a new execution from its request and agent profile."""


def echo(request: ExecuteRequest, _profile: str) -> list[Step]:
    """The default script: ``You said: <text>`` as 3 chunks, then ``COMPLETE``."""
    return [Chunks(f"You said: {request.message.text}"), Complete()]
