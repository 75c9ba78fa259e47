"""The functions the model is offered: one per tool the agent may call, generated from its
``ToolSpec`` (name, description, argument schema), and two reserved functions that are
never tools: ``report_outcome`` (the turn's category, DESIGN §16) and ``send_messages``
(a reply in several messages). Pure.

The model only proposes: every call it makes still goes through the gateway (allowlist,
arguments, ledger, gate, confirmation), so a function name the model invents reaches the
gateway as it is and is refused there, on the record.

Function names allow letters, digits, ``_`` and ``-``; a tool name's dots become ``__``.
A call may name either the function or the tool itself (the model reads tool names in the
history's tool notes): both resolve to the same spec, so a tool that needs the customer's
confirmation is asked for whichever spelling the model used. The two spellings never
collide: names that would are refused when the functions are built.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.errors import InvalidValue
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.pipelines.llm.outcomes import REPORTABLE

REPORT_OUTCOME = "report_outcome"
SEND_MESSAGES = "send_messages"
RESERVED = frozenset({REPORT_OUTCOME, SEND_MESSAGES})

_POLICY_NOTES = {
    SideEffectPolicy.PURE: "It only reads; it changes nothing.",
    SideEffectPolicy.IDEMPOTENT: "It changes something; calling it twice does no harm.",
    SideEffectPolicy.COMPENSATABLE: "It changes something that can be undone.",
    SideEffectPolicy.IRREVERSIBLE: (
        "It changes something that cannot be undone: call it only when the customer asked."
    ),
}
CONFIRMATION_NOTE = "acf asks the customer to confirm before it runs; you learn the answer."

REPORT_OUTCOME_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": REPORT_OUTCOME,
        "description": (
            "Report how this turn ends for the customer, once, beside your reply: "
            "ANSWERED (you answered), ASKED_USER (you need more from the customer), "
            "KNOWLEDGE_GAP (you do not know), OUT_OF_SCOPE (not something you handle), "
            "SAFETY_REFUSAL (you must not help with this), HANDOFF (a person must take "
            "over), ABUSE_SUSPECTED (the customer misuses the service)."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": [c.value for c in REPORTABLE]},
                "reason": {"type": "string", "description": "One short sentence."},
            },
            "required": ["category"],
        },
    },
}
SEND_MESSAGES_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": SEND_MESSAGES,
        "description": (
            "Send your reply as several separate chat messages, in order, instead of one "
            "text (for example a short answer, then the details)."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "messages": {"type": "array", "items": {"type": "string"}, "minItems": 1}
            },
            "required": ["messages"],
        },
    },
}


def function_name(tool: str) -> str:
    """The name the model sees for tool ``tool``."""
    return tool.replace(".", "__")


def describe(spec: ToolSpec) -> str:
    """What the model reads to choose the tool: its description (or status text), what
    its side effect is, and whether the customer confirms it first."""
    head = (spec.description or spec.status_text or f"The tool {spec.name}.").strip()
    if head and head[-1] not in ".!?":
        head += "."
    parts = [head, _POLICY_NOTES[spec.policy]]
    if spec.requires_confirmation:
        parts.append(CONFIRMATION_NOTE)
    return " ".join(parts)


def _parameters(spec: ToolSpec) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(spec.args_schema, default=str))
    schema.setdefault("type", "object")
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    return schema


@dataclass(frozen=True, slots=True)
class ToolSchemas:
    functions: tuple[dict[str, Any], ...]
    """The request's ``tools``: the agent's tools, then the reserved functions."""
    specs: Mapping[str, ToolSpec]
    """Function name -> the tool's spec."""

    def spec(self, name: str) -> ToolSpec | None:
        """The spec of the tool a call names, by its function name or its tool name; None
        for a name the agent was not offered (a reserved function, an invented tool)."""
        found = self.specs.get(name)
        return found if found is not None else self.spec_of_tool(name)

    def spec_of_tool(self, tool: str) -> ToolSpec | None:
        """The spec of the tool named ``tool`` (not its function name)."""
        spec = self.specs.get(function_name(tool))
        return spec if spec is not None and spec.name == tool else None


def tool_schemas(specs: Sequence[ToolSpec]) -> ToolSchemas:
    """The functions for ``specs`` (in name order, so the request is stable). Raises
    ``InvalidValue`` for a tool whose name is reserved or collides with another's."""
    functions: list[dict[str, Any]] = []
    by_function: dict[str, ToolSpec] = {}
    for spec in sorted(specs, key=lambda s: s.name):
        name = function_name(spec.name)
        if name in RESERVED:
            raise InvalidValue(f"tool {spec.name!r}: the name is reserved by the llm pipeline")
        if name in by_function:
            raise InvalidValue(
                f"tools {by_function[name].name!r} and {spec.name!r} are both {name!r} to the model"
            )
        by_function[name] = spec
        functions.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": describe(spec),
                    "parameters": _parameters(spec),
                },
            }
        )
    functions += [REPORT_OUTCOME_FUNCTION, SEND_MESSAGES_FUNCTION]
    return ToolSchemas(tuple(functions), by_function)
