"""A scenario's own expectations (``Expect``), checked against what the harness saw; the
LLM's are checked by ``scenario_llm``, the people's by ``scenario_people``."""

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from acf.domain.events import EventKind, FabricEvent
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.tools import LedgerStatus
from acf.domain.turns import TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.testing import invariants
from acf.testing.harness import Harness

if TYPE_CHECKING:
    from acf.testing.scenarios import Scenario


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replies: dict[str, list[str]] = Field(default_factory=dict)
    """Per customer, the texts delivered (each outbox row once), in order."""
    reply_counts: dict[str, int] = Field(default_factory=dict)
    total_replies: int | None = None
    turns: dict[TurnPhase, int] = Field(default_factory=dict)
    events: dict[EventKind, int] = Field(default_factory=dict)
    events_at_least: dict[EventKind, int] = Field(default_factory=dict)
    flagged: list[str] | None = None
    """Exactly the customers whose session is flagged (``[]``: none)."""
    tool_runs: dict[str, int] = Field(default_factory=dict)
    step_runs: dict[str, int] = Field(default_factory=dict)
    backend_calls: dict[str, int] = Field(default_factory=dict)
    """Per tool, every call its backend received (retries and re-runs included)."""
    ledger: dict[str, dict[LedgerStatus, int]] = Field(default_factory=dict)
    """Per tool, ledger rows by status."""
    repeats: int = 0
    """Outbox rows sent more than once (only after a crash between acceptance and record)."""
    state: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per customer, keys expected in the session's ``data``."""
    window_closes: list[str] | None = None
    """Why each window closed, in order (``window.closed`` reasons, all sessions)."""
    replied_by_ms: dict[str, int] = Field(default_factory=dict)
    """Per customer, the last reply was accepted by the channel at most this late."""
    model_requests: int | None = None
    """Completions the scripted ``model`` was asked for (a recovery reusing one asks none)."""
    outcomes: list[str] | None = None
    """The outcome categories of the committed turns, in commit order (LLM agents)."""
    model_cancelled: int | None = None
    """Completions of the scripted ``model`` cancelled by a supersede."""
    model_requests_containing: dict[str, int] = Field(default_factory=dict)
    """Per text, the completions of the scripted ``model`` whose messages contain it."""
    modes: dict[str, SessionMode] = Field(default_factory=dict)
    """Per customer, the mode of their newest session."""
    agent_turns: dict[str, int] = Field(default_factory=dict)
    """Per customer, the agent's turns (in any phase): 0 when no agent turn ran."""
    turn_kinds: dict[TurnKind, int] = Field(default_factory=dict)
    """Committed turns by kind (agent, human, drop), all sessions."""
    agent_answered_after: dict[str, int] = Field(default_factory=dict)
    """Per customer, the last committed agent turn answered only messages after this seq."""
    notices: dict[str, int] = Field(default_factory=dict)
    """Per customer, the fabric's notices queued (handoff, still waiting, cool-down)."""
    operator_replies: dict[str, int] = Field(default_factory=dict)
    """Per customer, the operators' replies queued."""


async def check(h: Harness, s: "Scenario", start: int) -> list[str]:
    e = s.expect
    problems = []
    for customer, texts in e.replies.items():
        got = h.replies(customer)
        if got != texts:
            problems.append(f"replies to {customer}: expected {texts}, got {got}")
    for customer, count in e.reply_counts.items():
        got_count = len(h.replies(customer))
        if got_count != count:
            problems.append(f"replies to {customer}: expected {count}, got {got_count}")
    if e.total_replies is not None and len(h.replies()) != e.total_replies:
        problems.append(f"total replies: expected {e.total_replies}, got {len(h.replies())}")
    sessions = await invariants.sessions_of(h.store, s.tenants)
    phases: Counter[TurnPhase] = Counter()
    kinds: Counter[EventKind] = Counter()
    closes: list[FabricEvent] = []
    for session in sessions:
        for turn in await h.store.turns.list_turns(session.tenant, session.session_id):
            phases[turn.phase] += 1
        query = EventQuery(session_id=session.session_id, limit=invariants.ALL)
        for event in await h.store.events.query(session.tenant, query):
            kinds[event.kind] += 1
            if event.kind is EventKind.WINDOW_CLOSED:
                closes.append(event)
    if e.window_closes is not None:
        reasons = [str(ev.data.get("reason")) for ev in closes]
        if reasons != e.window_closes:
            problems.append(f"window closes: expected {e.window_closes}, got {reasons}")
    for customer, limit in e.replied_by_ms.items():
        times = [x.at_ms - start for x in h.channel.sends if x.key.customer == customer]
        if not times or max(times) > limit:
            problems.append(f"last reply to {customer} at {times[-1:]} ms; expected <= {limit}")
    for phase, count in e.turns.items():
        if phases[phase] != count:
            problems.append(f"turns {phase.value}: expected {count}, got {phases[phase]}")
    for kind, count in e.events.items():
        if kinds[kind] != count:
            problems.append(f"events {kind.value}: expected {count}, got {kinds[kind]}")
    for kind, count in e.events_at_least.items():
        if kinds[kind] < count:
            problems.append(f"events {kind.value}: expected at least {count}, got {kinds[kind]}")
    flagged = sorted(x.key.customer for x in sessions if x.flagged)
    if e.flagged is not None and flagged != sorted(e.flagged):
        problems.append(f"flagged sessions: expected {sorted(e.flagged)}, got {flagged}")
    problems += _per_tool("tool {} runs", e.tool_runs, h.tally.tool_runs)
    for name, count in e.step_runs.items():
        if h.tally.step_runs[name] != count:
            problems.append(f"step {name}: expected {count} runs, got {h.tally.step_runs[name]}")
    problems += _per_tool("backend calls of {}", e.backend_calls, h.tally.backend_calls)
    for tool, statuses in e.ledger.items():
        rows: Counter[LedgerStatus] = Counter()
        for tenant in s.tenants:
            for row in await h.store.ledger.query(tenant, LedgerQuery(tool=tool)):
                rows[row.status] += 1
        for status, count in statuses.items():
            if rows[status] != count:
                problems.append(
                    f"ledger of {tool}: expected {count} {status.value}, got {rows[status]}"
                )
    by_customer = {x.key.customer: x for x in sessions}
    for customer, data in e.state.items():
        got_data = (
            dict(by_customer[customer].state.get("data", {})) if customer in by_customer else {}
        )
        for k, v in data.items():
            if got_data.get(k) != v:
                problems.append(
                    f"state of {customer}: expected data.{k} = {v!r}, got {got_data.get(k)!r}"
                )
    return problems


def _per_tool(label: str, expected: Mapping[str, int], seen: Counter[str]) -> list[str]:
    """Compare counts per tool name; ``seen`` is keyed ``tool:detail``."""
    totals: Counter[str] = Counter()
    for key, count in seen.items():
        totals[key.split(":", 1)[0]] += count
    return [
        f"{label.format(tool)}: expected {count}, got {totals[tool]}"
        for tool, count in expected.items()
        if totals[tool] != count
    ]
