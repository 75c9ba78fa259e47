"""The agent service protocol (DESIGN §16, seed 004): what acf sends and what it reads.

``POST {base}/v1/agents/{profile}/execute`` with headers ``X-API-Key``, ``traceparent``,
``Idempotency-Key`` (the execution key) and, when resuming a cut stream, ``Last-Event-ID``;
the body is an ``ExecuteRequest``. The answer is ``text/event-stream`` with the header
``X-Agent-Session-Id``; each event has an ``id:`` increasing within the execution, an
``event:`` name and JSON ``data`` carrying ``agent_session_id``. ``GET
{base}/v1/sessions/{id}`` answers a ``SessionStatusBody``; ``GET {base}/health`` a
``HealthBody``.

Both sides parse with these models: acf's client, the fake service in ``acf.testing`` and
the reference service in ``examples/agent_service``. Unknown fields are ignored (a newer
service may add some); a missing or mistyped field is a ``ProtocolError``.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

EXECUTE_PATH = "/v1/agents/{profile}/execute"
SESSION_PATH = "/v1/sessions/{agent_session_id}"
HEALTH_PATH = "/health"
SESSION_HEADER = "X-Agent-Session-Id"
KEY_HEADER = "Idempotency-Key"
API_KEY_HEADER = "X-API-Key"
LAST_EVENT_HEADER = "Last-Event-ID"


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ProtocolError(Exception):
    """The service sent something the protocol does not allow (the message says what)."""


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class HistoryItem(Wire):
    role: Role
    content: str


class Button(Wire):
    id: str
    title: str


class CustomerMessage(Wire):
    text: str
    """The customer's turn text (also when it answers an ask)."""
    buttons: list[Button] | None = None
    """The buttons of acf's last reply, when the customer answered by pressing one."""


class LinkedIdentity(Wire):
    channel: str
    address: str


class UserContext(Wire):
    tenant: str
    customer_id: str | None = None
    channel: str | None = None
    locale: str | None = None
    linked_identities: list[LinkedIdentity] | None = None


class Answer(Wire):
    ask_id: str
    text: str


class ExecuteRequest(Wire):
    conversation_id: str
    """acf's session id."""
    agent_session_id: str | None = None
    """None: the service opens a new agent session (and names it in the answer)."""
    message: CustomerMessage
    chat_history: list[HistoryItem] = Field(default_factory=list)
    user_context: UserContext
    answer: Answer | None = None
    """The customer's answer to the pending ``ASK_USER`` of this agent session."""
    supersedes: str | None = None
    """The execution key of an execution this one replaces (the customer corrected
    themself while it ran; acf closed its stream)."""


class EventType(StrEnum):
    THOUGHT = "THOUGHT"
    TOOL_START = "TOOL_START"
    TOOL_END = "TOOL_END"
    ANSWER_CHUNK = "ANSWER_CHUNK"
    ASK_USER = "ASK_USER"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"


class SideEffect(StrEnum):
    """What a tool of the service does to the world (its TOOL_START says it)."""

    NONE = "none"
    REVERSIBLE = "reversible"
    IRREVERSIBLE = "irreversible"


class ThoughtData(Wire):
    type: Literal[EventType.THOUGHT] = EventType.THOUGHT
    agent_session_id: str
    text: str = ""


class ToolStartData(Wire):
    type: Literal[EventType.TOOL_START] = EventType.TOOL_START
    agent_session_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status_text: str | None = None
    """What the customer may be shown while the tool runs ("Checking your order...")."""
    side_effect: SideEffect = SideEffect.NONE


class ToolEndData(Wire):
    type: Literal[EventType.TOOL_END] = EventType.TOOL_END
    agent_session_id: str
    tool: str
    ok: bool
    summary: str | None = None


class AnswerChunkData(Wire):
    type: Literal[EventType.ANSWER_CHUNK] = EventType.ANSWER_CHUNK
    agent_session_id: str
    text: str


class AskUserData(Wire):
    type: Literal[EventType.ASK_USER] = EventType.ASK_USER
    agent_session_id: str
    ask_id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    options: list[str] | None = None


class CompleteData(Wire):
    type: Literal[EventType.COMPLETE] = EventType.COMPLETE
    agent_session_id: str
    answer: str


class ErrorData(Wire):
    type: Literal[EventType.ERROR] = EventType.ERROR
    agent_session_id: str
    code: str
    message: str
    retryable: bool = False


AgentEvent = Annotated[
    ThoughtData
    | ToolStartData
    | ToolEndData
    | AnswerChunkData
    | AskUserData
    | CompleteData
    | ErrorData,
    Field(discriminator="type"),
]
_EVENT: TypeAdapter[AgentEvent] = TypeAdapter(AgentEvent)
FINAL = frozenset({EventType.ASK_USER, EventType.COMPLETE, EventType.ERROR})
"""Events that end an execution's stream."""


def parse_event(name: str, data: str) -> AgentEvent:
    """The event called ``name`` with JSON ``data``; ``ProtocolError`` when the name is not
    one of ``EventType`` or the data does not fit it (the message names the event and
    field, never echoes the payload)."""
    try:
        kind = EventType(name)
    except ValueError:
        raise ProtocolError(f"unknown event {name[:40]!r}") from None
    try:
        raw = TypeAdapter(dict[str, Any]).validate_json(data)
        return _EVENT.validate_python({**raw, "type": kind})
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) or "data" for e in exc.errors()})
        raise ProtocolError(f"{kind.value}: invalid or missing {', '.join(fields)}") from None


def event_data(event: AgentEvent) -> str:
    """The JSON ``data`` line of ``event`` (its type is the SSE ``event:`` name)."""
    return event.model_dump_json(exclude={"type"}, exclude_none=True)


class AgentSessionState(StrEnum):
    """The service's view of one agent session (``GET /v1/sessions/{id}``)."""

    ACTIVE = "ACTIVE"
    AWAITING_USER = "AWAITING_USER"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class SessionStatusBody(Wire):
    agent_session_id: str
    status: AgentSessionState
    profile: str | None = None
    pending_ask_id: str | None = None


class HealthBody(Wire):
    status: Literal["ok", "degraded", "down"]
