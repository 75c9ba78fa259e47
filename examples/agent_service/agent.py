"""The LLM agent behind the protocol: chat-completions rounds with tools, as events.

Each run continues an execution from its agent session's stored transcript: tool calls that
still lack a result run first (one whose ``TOOL_START`` was sent is not announced again, and
``open_ticket`` returns the ticket it already wrote), then the model is asked (streamed:
token deltas become ``ANSWER_CHUNK``\\ s, reasoning deltas a ``THOUGHT``) until it answers
without tool calls (``COMPLETE``, the text of this execution's rounds) or calls
``ask_customer`` (``ASK_USER``). A side-effecting tool starts only once its ``TOOL_START``
has reached a connected client (``Journal.flushed``) and is not interrupted by a disconnect
(``Journal.protect``). Model errors become ``ERROR`` events, retryable or not.
"""

import json
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import httpx
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from acf.pipelines.agent_service.protocol import (
    AgentSessionState,
    AskUserData,
    CompleteData,
    ErrorData,
    SideEffect,
    ToolEndData,
    ToolStartData,
)

from .conversation import Call, ChunkGate, tool_message, unanswered_calls
from .store import Message, Store
from .tools import (
    ASK_CUSTOMER,
    TOOLS,
    AskCustomerArgs,
    OpenTicketArgs,
    SearchHelpArgs,
    ToolSpec,
    function_schemas,
    parse_arguments,
    search_help,
)

_T = TypeVar("_T")
MAX_THOUGHT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Profile:
    """What ``POST /v1/agents/{profile}/execute`` runs."""

    name: str
    system_prompt: str
    tools: tuple[str, ...]


PROFILES: dict[str, Profile] = {
    "support": Profile(
        "support",
        "You are the support assistant of Example Shop. Answer briefly and only from what"
        " the help center says (search_help). When you need a detail from the customer, ask"
        " with ask_customer. Open a ticket (open_ticket) only when the customer asks for a"
        " person or the help center cannot solve the problem.",
        ("search_help", "open_ticket", ASK_CUSTOMER),
    ),
}


class Journal(Protocol):
    """One execution as the agent writes it: each method stores, then publishes."""

    @property
    def key(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def streamed(self) -> str:
        """The text of every ``ANSWER_CHUNK`` sent so far."""

    @property
    def answered(self) -> str:
        """The text of the execution's finished model rounds."""

    async def chunk(self, text: str) -> None: ...
    async def thought(self, text: str) -> None: ...
    async def message(self, message: Message) -> None:
        """Append to the transcript (a finished round's assistant message, a tool result
        that sent no event)."""

    async def start_tool(self, call_id: str, event: ToolStartData) -> int: ...
    async def flushed(self, event_id: int) -> None:
        """Wait until a connected client was sent event ``event_id``."""

    async def finish_tool(self, event: ToolEndData, result: Message) -> None: ...
    async def end(
        self,
        event: CompleteData | AskUserData | ErrorData,
        status: AgentSessionState,
        pending: tuple[str, str] | None = None,
    ) -> None: ...
    async def fail_retryable(self, event: ErrorData) -> None:
        """Send ``event`` live and stop; the execution stays open for a retry."""

    def protect(self, work: Awaitable[_T]) -> Awaitable[_T]:
        """``work``, run to its end even if the execution is cancelled meanwhile."""


class Agent:
    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        store: Store,
        *,
        max_model_calls: int = 6,
        temperature: float = 0.0,
    ) -> None:
        self.client = client
        self.model = model
        self.store = store
        self.max_model_calls = max_model_calls
        self.temperature = temperature

    async def run(self, journal: Journal, profile: Profile) -> None:
        """Run until the execution's final event (or a retryable error) is written."""
        try:
            await self._rounds(journal, profile)
        except openai.APIStatusError as exc:
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            said = f"the model endpoint answered HTTP {status}"
            await self._error(journal, f"model_http_{status}", said, retryable)
        except openai.APITimeoutError:
            await self._error(journal, "model_timeout", "the model endpoint timed out", True)
        except (openai.APIConnectionError, httpx.TransportError) as exc:
            said = f"the model endpoint could not be reached or cut ({type(exc).__name__})"
            await self._error(journal, "model_unavailable", said, True)
        except openai.APIError as exc:  # an error event inside the stream
            said = f"the model endpoint failed ({type(exc).__name__})"
            await self._error(journal, "model_error", said, True)

    async def _rounds(self, journal: Journal, profile: Profile) -> None:
        calls_made = 0
        while True:
            transcript = await self.store.transcript(journal.session_id)
            pending = unanswered_calls(transcript)
            if pending:
                if await self._tools(journal, profile, pending):
                    return
                continue
            if calls_made == self.max_model_calls:
                said = f"no answer after {calls_made} model calls"
                await self._error(journal, "too_many_rounds", said, False)
                return
            calls_made += 1
            message = await self._complete(journal, profile, transcript)
            await journal.message(message)
            if not message.get("tool_calls"):
                done = CompleteData(agent_session_id=journal.session_id, answer=journal.answered)
                await journal.end(done, AgentSessionState.COMPLETED)
                return

    async def _complete(
        self, journal: Journal, profile: Profile, transcript: list[Message]
    ) -> Message:
        """One streamed model round; its assistant message."""
        gate = ChunkGate.resuming(journal.streamed, journal.answered)
        messages = [{"role": "system", "content": profile.system_prompt}, *transcript]
        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            tools=cast("list[ChatCompletionToolParam]", function_schemas(profile.tools)),
            temperature=self.temperature,
            stream=True,
        )
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        async with stream:  # leaving it closes the response: a cancel stops the model
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    thinking = _text(getattr(delta, "reasoning_content", None))
                    thinking = thinking or _text(getattr(delta, "reasoning", None))
                    if thinking:
                        reasoning.append(thinking)
                    if reasoning and (delta.content or delta.tool_calls):
                        await journal.thought("".join(reasoning)[:MAX_THOUGHT_CHARS])
                        reasoning.clear()
                    if delta.content:
                        text.append(delta.content)
                        piece = gate.feed(delta.content)
                        if piece:
                            await journal.chunk(piece)
                    for part in delta.tool_calls or ():
                        call = calls.setdefault(part.index, ["", "", ""])
                        if part.id:
                            call[0] = part.id
                        if part.function is not None:
                            call[1] += part.function.name or ""
                            call[2] += part.function.arguments or ""
        if reasoning:
            await journal.thought("".join(reasoning)[:MAX_THOUGHT_CHARS])
        message: Message = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            message["tool_calls"] = [
                {
                    # An endpoint that sends no id gets one unique in the agent session.
                    "id": i or f"call_{secrets.token_hex(8)}",
                    "type": "function",
                    "function": {"name": n, "arguments": a},
                }
                for i, n, a in (calls[index] for index in sorted(calls))
            ]
        return message

    async def _tools(self, journal: Journal, profile: Profile, calls: list[Call]) -> bool:
        """Run the calls waiting for a result; whether the execution ended (``ASK_USER``)."""
        asks = [c for c in calls if c.name == ASK_CUSTOMER and c.name in profile.tools]
        for call in calls:
            if call in asks:
                continue
            spec = TOOLS.get(call.name) if call.name in profile.tools else None
            if spec is None:
                await journal.message(tool_message(call.id, f"unknown tool {call.name!r}"))
                continue
            args = parse_arguments(spec, call.arguments)
            if isinstance(args, str):
                await journal.message(tool_message(call.id, args))
                continue
            started = await self.store.tool_start_id(journal.key, call.id)
            if started is None:
                start = ToolStartData(
                    agent_session_id=journal.session_id,
                    tool=spec.name,
                    args=args.model_dump(),
                    status_text=spec.status_text,
                    side_effect=spec.side_effect,
                )
                started = await journal.start_tool(call.id, start)
            if spec.side_effect is SideEffect.NONE:
                await self._run_tool(journal, spec, call.id, args)
            else:
                await journal.flushed(started)
                await journal.protect(self._run_tool(journal, spec, call.id, args))
        if not asks:
            return False
        first, *others = asks
        for other in others:
            await journal.message(tool_message(other.id, "Not asked: ask one question at a time."))
        args = parse_arguments(TOOLS[ASK_CUSTOMER], first.arguments)
        if not isinstance(args, AskCustomerArgs):
            await journal.message(tool_message(first.id, str(args)))
            return False
        ask = AskUserData(
            agent_session_id=journal.session_id,
            ask_id=first.id,
            question=args.question,
            options=args.options,
        )
        await journal.end(ask, AgentSessionState.AWAITING_USER, (first.id, args.question))
        return True

    async def _run_tool(self, journal: Journal, spec: ToolSpec, call_id: str, args: Any) -> None:
        """Run one tool and store its ``TOOL_END`` with its result."""
        if isinstance(args, SearchHelpArgs):
            result = search_help(args.query)
            found = len(json.loads(result)["results"])
            summary = f"{found} article{'s' if found != 1 else ''} found"
        elif isinstance(args, OpenTicketArgs):
            number = await self.store.open_ticket(
                journal.key, call_id, journal.session_id, args.summary
            )
            result = json.dumps({"ticket": f"T-{number:06d}", "status": "open"})
            summary = f"Ticket T-{number:06d} opened"
        else:  # the specs and this dispatch are written together
            raise TypeError(f"no runner for {spec.name}")
        end = ToolEndData(
            agent_session_id=journal.session_id, tool=spec.name, ok=True, summary=summary
        )
        await journal.finish_tool(end, tool_message(call_id, result))

    async def _error(self, journal: Journal, code: str, message: str, retryable: bool) -> None:
        error = ErrorData(
            agent_session_id=journal.session_id, code=code, message=message, retryable=retryable
        )
        if retryable:
            await journal.fail_retryable(error)
        else:
            await journal.end(error, AgentSessionState.FAILED)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
