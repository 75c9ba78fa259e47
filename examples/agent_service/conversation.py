"""Pure rules of the agent's conversation: which messages an execution request adds to its
agent session's transcript, which tool calls still wait for a result, and which part of a
model answer to stream when part of it was already streamed before an interruption."""

from dataclasses import dataclass

from acf.pipelines.agent_service.protocol import AgentSessionState, ExecuteRequest

from .store import Message, SessionRow

NOT_ANSWERED = "The customer did not answer this; they wrote a new message instead."
NOT_RUN = "Not run: the request that asked for it was replaced by a newer one."


class Refused(Exception):
    """A request the service does not run: ``status`` and a message safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Call:
    """A tool call of the model's last round."""

    id: str
    name: str
    arguments: str


def tool_message(call_id: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def unanswered_calls(transcript: list[Message]) -> list[Call]:
    """The tool calls of the transcript's last assistant message that have no result yet,
    when only results follow it (else none: the conversation went on)."""
    answered: set[str] = set()
    for message in reversed(transcript):
        if message["role"] == "tool":
            answered.add(message["tool_call_id"])
            continue
        if message["role"] != "assistant":
            return []
        calls = [
            Call(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or ()
        ]
        return [c for c in calls if c.id not in answered]
    return []


def opening_messages(
    request: ExecuteRequest, session: SessionRow | None, transcript: list[Message]
) -> list[Message]:
    """What a new execution appends to the transcript before the model is asked.

    A new agent session starts from the request's ``chat_history``; an existing one keeps
    its own transcript. An ``answer`` must name the session's pending ask (else ``Refused``
    409) and becomes that ``ask_customer`` call's result. Tool calls left without a result
    (an unanswered ask, an execution that was superseded mid-way) are closed first, so the
    transcript stays one the chat-completions API accepts.
    """
    if session is None:
        if request.answer is not None:
            raise Refused(409, "an answer needs the agent session that asked")
        history: list[Message] = [
            {"role": item.role.value, "content": item.content} for item in request.chat_history
        ]
        return [*history, {"role": "user", "content": request.message.text}]
    pending = session.pending_ask_id if session.status is AgentSessionState.AWAITING_USER else None
    if request.answer is not None and request.answer.ask_id != pending:
        raise Refused(409, f"agent session {session.id} has no pending ask with that id")
    messages: list[Message] = []
    for call in unanswered_calls(transcript):
        if request.answer is not None and call.id == request.answer.ask_id:
            messages.append(tool_message(call.id, request.answer.text))
        else:
            messages.append(tool_message(call.id, NOT_ANSWERED if call.id == pending else NOT_RUN))
    if request.answer is None:
        messages.append({"role": "user", "content": request.message.text})
    return messages


class ChunkGate:
    """Which text of a model round to send as ``ANSWER_CHUNK``\\ s.

    A round interrupted by a disconnect has already streamed ``already``; asked again, the
    model's new answer streams only past that text, and only while it repeats it (a model
    at temperature 0 usually does). Once it says something else, nothing more streams: the
    ``COMPLETE`` event carries the answer, which is what a client commits.
    """

    def __init__(self, already: str = "", *, diverged: bool = False) -> None:
        self._sent = already
        self._text = ""
        self._diverged = diverged

    @classmethod
    def resuming(cls, streamed: str, answered: str) -> "ChunkGate":
        """The gate of the next round of an execution that streamed ``streamed`` so far,
        of which ``answered`` is the text of its finished rounds."""
        if not streamed.startswith(answered):
            return cls(diverged=True)
        return cls(streamed[len(answered) :])

    def feed(self, delta: str) -> str:
        """The part of ``delta`` to send now (may be empty)."""
        self._text += delta
        if self._diverged:
            return ""
        if not (self._text.startswith(self._sent) or self._sent.startswith(self._text)):
            self._diverged = True
            return ""
        if len(self._text) <= len(self._sent):
            return ""
        new = self._text[len(self._sent) :]
        self._sent = self._text
        return new
