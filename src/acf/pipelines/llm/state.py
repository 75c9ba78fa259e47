"""What the LLM pipeline keeps in session state, under ``data.llm`` (the pipeline's part of
the state contract, ``acf.domain.state``):

- ``tool_log``: the last ``TOOL_LOG_LIMIT`` tool calls, ``{at_ms, tool, args, outcome,
  summary}`` (the history folds earlier turns' tool activity from it; enforcement reads
  what was done);
- ``pending_round``: the round a confirmation interrupted, as JSON text
  (``acf.pipelines.llm.rounds``);
- what the history keeps (its rolling summary), written by ``acf.pipelines.llm.history``.

Changes are JSON merge patches, committed with the turn.
"""

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from acf.domain.tools import Outcome, ToolResult, ToolSpec
from acf.pipelines.llm.messages import plain

STATE_KEY = "llm"
TOOL_LOG_LIMIT = 20
SUMMARY_LIMIT = 200
DONE = frozenset({Outcome.OK.value, Outcome.ALREADY_DONE.value})


def llm_state(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pipeline's part of the session state."""
    data = state.get("data")
    found = data.get(STATE_KEY) if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def tool_log(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = llm_state(state).get("tool_log")
    if not isinstance(raw, list | tuple):
        return []
    return [dict(entry) for entry in raw if isinstance(entry, Mapping)]


def summary_of(result: ToolResult) -> str:
    """A short account of a result: its value or error, at most ``SUMMARY_LIMIT`` chars."""
    if result.error:
        text = result.error
    elif result.value is None:
        text = result.outcome.value
    else:
        text = json.dumps(plain(result.value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def log_entry(at_ms: int, tool: str, args: Mapping[str, Any], result: ToolResult) -> dict[str, Any]:
    return {
        "at_ms": at_ms,
        "tool": tool,
        "args": plain(dict(args)),
        "outcome": result.outcome.value,
        "summary": summary_of(result),
    }


def appended(log: Sequence[Mapping[str, Any]], entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``log`` with ``entries`` added, the oldest dropped beyond ``TOOL_LOG_LIMIT``."""
    return [dict(e) for e in [*log, *entries]][-TOOL_LOG_LIMIT:]


def done_within_ttl(
    log: Sequence[Mapping[str, Any]], specs: Collection[ToolSpec], now_ms: int
) -> set[str]:
    """Tools the log shows as done (or already done) within their dedupe TTL: actions the
    gateway would still answer "already done" for. A tool without a TTL (its key lives in
    one turn group or session) is not counted here: the turn's own ledger tells."""
    ttls = {spec.name: spec.ttl_ms for spec in specs}
    done: set[str] = set()
    for entry in log:
        tool, at_ms = entry.get("tool"), entry.get("at_ms")
        ttl = ttls.get(tool) if isinstance(tool, str) else None
        if ttl is None or not isinstance(at_ms, int) or entry.get("outcome") not in DONE:
            continue
        if now_ms - at_ms < ttl:
            done.add(str(tool))
    return done


def llm_patch(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A state merge patch setting ``changes`` in the pipeline's part (``None`` deletes)."""
    return {"data": {STATE_KEY: dict(changes)}}
