"""The round of tool calls a confirmation interrupted, kept in session state until the
customer answers (DESIGN §16).

A tool that needs the customer's yes ends the turn with the question. Chat-completions
APIs reject an assistant message with tool calls unless every call id has a tool reply, so
the round is stored whole: the assistant message verbatim, the replies of the sibling
calls already run, and which call waits. In the turn that settles the confirmation the
round is replayed with the settlement as that call's reply, so the model can say "Done:
refund R-0001" or "OK, I won't". Pure.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.domain.tools import Outcome
from acf.pipelines.llm.messages import NOTES, call_ids, iso_time, plain, tool_message

ANSWER_NOTES: Mapping[str, str] = {
    "no": "The customer said no: nothing was done. Acknowledge it.",
    "expired": "The customer did not answer in time: nothing was done.",
}
AWAITING = {
    "outcome": "awaiting_confirmation",
    "note": (
        "The customer was asked to confirm this and has not answered yes or no yet; "
        "nothing was done. Their newest message follows."
    ),
}
NOT_RUN = {
    "outcome": "not_run",
    "note": "Not run: one confirmation at a time. Ask again once this one is settled.",
}


@dataclass(frozen=True, slots=True)
class PendingRound:
    assistant: Mapping[str, Any]
    """The assistant message with all its tool calls, as the model sent it."""
    replies: tuple[Mapping[str, Any], ...]
    """The tool messages of the calls already answered in that round."""
    pending_call_id: str
    tool: str
    args: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "assistant": plain(self.assistant),
            "replies": plain(list(self.replies)),
            "pending_call_id": self.pending_call_id,
            "tool": self.tool,
            "args": plain(self.args),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "PendingRound":
        return cls(
            assistant=dict(raw["assistant"]),
            replies=tuple(dict(r) for r in raw.get("replies") or ()),
            pending_call_id=str(raw["pending_call_id"]),
            tool=str(raw["tool"]),
            args=dict(raw.get("args") or {}),
        )

    def replay(self, pending_reply: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The round as the next request carries it: the assistant message, then one tool
        message per call id in the calls' order (the waiting one gets ``pending_reply``; a
        call without a stored reply is answered as not run)."""
        stored = {str(r.get("tool_call_id")): dict(r) for r in self.replies}
        messages: list[dict[str, Any]] = [dict(plain(self.assistant))]
        for call_id in call_ids(self.assistant):
            if call_id == self.pending_call_id:
                messages.append(tool_message(call_id, pending_reply))
            else:
                messages.append(stored.get(call_id) or tool_message(call_id, NOT_RUN))
        return messages


def to_state(kept: PendingRound) -> str:
    """The round as session state keeps it: one JSON text. A text replaces the earlier
    round whole under a merge patch, where a mapping would be merged into it (keeping an
    earlier round's arguments) and lose every ``null`` inside (an assistant message's
    empty ``content``, a tool's ``null`` value): the replay must be verbatim."""
    return json.dumps(kept.to_json(), sort_keys=True, ensure_ascii=False)


def from_state(raw: object) -> PendingRound | None:
    """The stored round, if there is a readable one."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(parsed, Mapping):
            return None
        return PendingRound.from_json(parsed)
    except (KeyError, TypeError, ValueError):
        return None


def settlement_reply(
    settled: Mapping[str, Any],
    value: Any = None,
    done_at_ms: int | None = None,
) -> dict[str, Any]:
    """The waiting call's reply once the customer answered: ``settled`` is the context's
    ``confirmation`` (``answer`` yes, no or expired; ``outcome`` of the run on a yes);
    ``value`` and ``done_at_ms`` what the ledger recorded for it."""
    answer = str(settled.get("answer"))
    reply: dict[str, Any] = {"confirmation": answer}
    if answer != "yes":
        reply["outcome"] = "not_run"
        reply["note"] = ANSWER_NOTES.get(answer, "Nothing was done.")
        return reply
    outcome = str(settled.get("outcome") or Outcome.FAILED.value)
    reply["outcome"] = outcome
    if value is not None:
        reply["value"] = plain(value)
    if done_at_ms is not None:
        reply["done_at"] = iso_time(done_at_ms)
        reply["done_at_ms"] = done_at_ms
    reply["note"] = "The customer confirmed. " + NOTES.get(outcome, "")
    return reply
