"""What the agent service pipeline keeps in session state, under ``data.agent_service``:

- ``tool_log``: the last ``TOOL_LOG_LIMIT`` tool calls the service reported (``{at_ms,
  tool, args, outcome, summary}``, outcome ``ok`` or ``failed``), shown in later turns'
  ``chat_history`` as notes (``acf.pipelines.llm.history``), so a new agent session still
  learns what was done.

Changes are JSON merge patches, committed with the turn.
"""

from collections.abc import Mapping, Sequence
from typing import Any

STATE_KEY = "agent_service"
TOOL_LOG_LIMIT = 20


def service_state(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pipeline's part of the session state."""
    data = state.get("data")
    found = data.get(STATE_KEY) if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def tool_log(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stored tool log (malformed entries dropped)."""
    raw = service_state(state).get("tool_log")
    if not isinstance(raw, list | tuple):
        return []
    return [dict(entry) for entry in raw if isinstance(entry, Mapping)]


def appended(log: Sequence[Mapping[str, Any]], entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``log`` with ``entries`` added, the oldest dropped beyond ``TOOL_LOG_LIMIT``."""
    return [dict(e) for e in [*log, *entries]][-TOOL_LOG_LIMIT:]


def service_patch(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A state merge patch setting ``changes`` in the pipeline's part."""
    return {"data": {STATE_KEY: dict(changes)}}
