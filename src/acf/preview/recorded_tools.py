"""The preview's tool backend: recorded results served back, never a real side effect.

A call is answered from the rows of the recorded session it replays (``session_of``: the
calling turn's, found through the sandbox's ledger row for the call), never from another
session's: another customer's recorded result is not served. A call whose (session, tool,
arguments) has a recorded ledger row gets that row's outcome again: its result when it
succeeded (or was compensated later), its error when it failed, an unknown outcome when it
never finished. Calls with the same arguments get the recorded rows in order, the last one
again once they run out. A call with no recorded row (or whose recorded session is not
known) gets a sandbox result (``{"sandbox": true, ...}``) and its execution is remembered,
so the diff flags it.
"""

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from acf.domain.tools import LedgerStatus
from acf.ports.ledger import LedgerEntry
from acf.ports.tool_backend import Handler, OutcomeUnknown, Tool, ToolCall
from acf.ports.tool_registry import ToolRegistry


class RecordedFailure(Exception):
    """The recorded call failed: the replay fails the same way."""


def call_key(session: str, tool: str, args: Mapping[str, Any]) -> str:
    return json.dumps([session, tool, args], sort_keys=True, separators=(",", ":"), default=str)


SessionOf = Callable[[str], Awaitable[str | None]]
"""The recorded session a call (its execution id) replays; None when it is not known."""


async def _unknown(execution_id: str) -> str | None:
    return None


class RecordedResults:
    def __init__(self, entries: Iterable[LedgerEntry]) -> None:
        self._rows: dict[str, list[LedgerEntry]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: (e.started_at_ms, e.execution_id)):
            self._rows[call_key(entry.session_id, entry.tool, entry.args)].append(entry)
        self._served: dict[str, int] = defaultdict(int)
        self.session_of: SessionOf = _unknown
        """Set by the replay once its sandbox can be read."""
        self.sandboxed: set[str] = set()
        """Execution ids (the sandbox's ledger rows) answered with a sandbox result."""
        self.calls = 0
        """Every call a replayed agent made (none reached a real backend)."""

    def registry(self, tools: ToolRegistry) -> ToolRegistry:
        """``tools``' specs (the allowlist, policies, keys) over this backend; no
        reconcile hook, so an unknown outcome stays in doubt as it would have."""
        specs = [t.spec for n in tools.names() if (t := tools.get(n)) is not None]
        return ToolRegistry(Tool(spec, self._handler(spec.name)) for spec in specs)

    def _handler(self, tool: str) -> Handler:
        async def handle(call: ToolCall) -> Any:
            self.calls += 1
            session = await self.session_of(call.execution_id)
            key = None if session is None else call_key(session, tool, call.args)
            rows = None if key is None else self._rows.get(key)
            if key is None or not rows:
                self.sandboxed.add(call.execution_id)
                return {"sandbox": True, "tool": tool, "note": "no recorded result"}
            row = rows[min(self._served[key], len(rows) - 1)]
            self._served[key] += 1
            if row.status in (LedgerStatus.SUCCEEDED, LedgerStatus.COMPENSATED):
                return row.result
            if row.status is LedgerStatus.FAILED:
                raise RecordedFailure(row.error or "failed")
            raise OutcomeUnknown(f"recorded as {row.status.value}")

        return handle
