"""The example agent's tools, as the model sees them (function schemas) and as they run.

- ``search_help(query)`` reads a small built-in FAQ; no side effect.
- ``open_ticket(summary)`` writes a ticket row to the service's SQLite file; irreversible,
  and idempotent per execution key and tool call (a resumed execution that calls it again
  gets the same ticket back).
- ``ask_customer(question, options)`` is not run: it ends the execution with ``ASK_USER``,
  and the customer's answer becomes the call's result in the next execution.

Arguments are parsed with pydantic; invalid ones are never run, the model is told why.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acf.pipelines.agent_service.protocol import SideEffect

ASK_CUSTOMER = "ask_customer"

FAQ: tuple[tuple[str, str], ...] = (
    (
        "How long does a refund take?",
        "Refunds reach the original payment method within 5 business days of approval.",
    ),
    (
        "How do I change my delivery address?",
        "Until the order ships, the address can be changed under Orders > Details > Address.",
    ),
    (
        "Where is my order?",
        "Every shipped order has a tracking link in its confirmation email.",
    ),
    (
        "How do I reset my password?",
        "Use 'Forgot password' on the sign-in page; the link in the email is valid for 1 hour.",
    ),
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchHelpArgs(_Args):
    query: str = Field(min_length=1, max_length=500)


class OpenTicketArgs(_Args):
    summary: str = Field(min_length=1, max_length=2000)


class AskCustomerArgs(_Args):
    question: str = Field(min_length=1, max_length=1000)
    options: list[str] | None = Field(default=None, max_length=10)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    args: type[_Args]
    side_effect: SideEffect
    status_text: str
    """What the customer may be shown while it runs."""


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "search_help",
            "Search the help center's articles. Use it before answering a how-to question.",
            SearchHelpArgs,
            SideEffect.NONE,
            "Searching the help center...",
        ),
        ToolSpec(
            "open_ticket",
            "Open a support ticket for a person to follow up. Only when the customer asks for"
            " it or the help center cannot solve the problem.",
            OpenTicketArgs,
            SideEffect.IRREVERSIBLE,
            "Opening a ticket...",
        ),
        ToolSpec(
            ASK_CUSTOMER,
            "Ask the customer one question and wait for the answer (with short options when"
            " the answer is one of a few).",
            AskCustomerArgs,
            SideEffect.NONE,
            "",
        ),
    )
}


def function_schemas(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The chat-completions ``tools`` entries of the tools ``names``."""
    schemas = []
    for name in names:
        spec = TOOLS[name]
        parameters = spec.args.model_json_schema()
        parameters.pop("title", None)
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": spec.description,
                    "parameters": parameters,
                },
            }
        )
    return schemas


def parse_arguments(spec: ToolSpec, arguments: str) -> _Args | str:
    """The call's arguments, or what is wrong with them (said to the model)."""
    try:
        return spec.args.model_validate_json(arguments or "{}")
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "arguments" for e in exc.errors()})
        return f"invalid arguments for {spec.name}: {', '.join(fields)}"


_WORD = re.compile(r"[a-z0-9]+")


def search_help(query: str, limit: int = 2) -> str:
    """The FAQ entries sharing most words with ``query`` (JSON for the model)."""
    words = set(_WORD.findall(query.lower()))
    scored = []
    for question, answer in FAQ:
        overlap = len(words & set(_WORD.findall(f"{question} {answer}".lower())))
        if overlap:
            scored.append((overlap, question, answer))
    scored.sort(key=lambda found: -found[0])
    results = [{"question": q, "answer": a} for _, q, a in scored[:limit]]
    return json.dumps({"results": results})
