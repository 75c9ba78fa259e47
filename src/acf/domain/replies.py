"""What a pipeline answers: reply segments and the result of one run (DESIGN §7)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class Button:
    button_id: str
    title: str


@dataclass(frozen=True, slots=True)
class ReplySegment:
    """One outbound message. ``delay_ms`` is the pause before it (pacing)."""

    text: str
    buttons: tuple[Button, ...] = ()
    media: tuple[str, ...] = ()
    delay_ms: int = 0

    def __post_init__(self) -> None:
        if not self.text.strip() and not self.media:
            raise InvalidValue("a reply segment needs text or media")
        if self.delay_ms < 0:
            raise InvalidValue("a reply segment's delay_ms must not be negative")

    def to_payload(self) -> dict[str, Any]:
        """The outbox payload: plain JSON."""
        return {
            "text": self.text,
            "buttons": [{"id": b.button_id, "title": b.title} for b in self.buttons],
            "media": list(self.media),
            "delay_ms": self.delay_ms,
        }


@dataclass(frozen=True, slots=True)
class FailedCall:
    """What a pipeline asked its brain when it failed for good (a dead letter's content):
    the request without headers or credentials, the error in words safe to show, and how
    many attempts were made."""

    request: Mapping[str, Any]
    error: str
    attempts: int


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The outcome of one pipeline run, committed atomically with the turn (DESIGN §4)."""

    segments: tuple[ReplySegment, ...] = ()
    state_patch: Mapping[str, Any] | None = None
    expects_more_input: bool = False
    outcomes: tuple[str, ...] = ()
    handoff: str | None = None
    """A reason when the conversation needs a person: the session is flagged."""
    details: Mapping[str, Any] = field(default_factory=dict)
    awaiting_answer: bool = False
    """The reply asks the customer a question the agent waits for (an agent service's
    ``ASK_USER``): like a pending confirmation, the customer's next message closes the
    accumulation window at once."""
    failed_call: "FailedCall | None" = None
    """The brain failed for good and the reply is a fallback: recorded as a dead letter."""
    agent_session: AgentSessionRow | None = None
    """The conversation's agent session as the turn leaves it: written with the turn's
    commit, never if the turn is superseded (the restart then finds the row as it was
    while the execution ran). It must be a row of the turn's tenant and session."""

    @classmethod
    def reply(cls, *texts: str, **kwargs: Any) -> "PipelineResult":
        return cls(segments=tuple(ReplySegment(t) for t in texts), **kwargs)
