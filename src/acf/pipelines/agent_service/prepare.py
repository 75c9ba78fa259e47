"""What a turn sends, fixed once per turn group and input (DESIGN §16): the request, its
execution key, written ahead on the agent session row before any request.

``prepare`` runs as a memoised step (``ctx.step``, keyed by the turn's message ids, or the
dead letter a REPLAY turn runs): it settles a stale question (ABANDONED, the event
``agent_service.ask_expired``) or an open row of another profile, builds the request
(``hydration``) for the agent session ``asks.plan`` picks, chooses its key
(``rows.choose_key``; a REPLAY turn of a failed execution: that execution's key and agent
session, ``replays``) and saves the row ACTIVE with the execution open under that key
(fenced) before it returns. How the execution ends is written only with the turn's
commit, so until then the row stays open under that key: a retry or a recovery of the
turn finds the prepared request and key in the memo and sends the same key (the service
replays or resumes the execution, even one that ended); a supersede (more messages, also
after the execution ended) prepares again, and the new key ``supersedes`` the one still
open. A crash between the row's write and the memo's loses only the expiry notice: the
row then holds the same input, so the key is the same.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.errors import Conflict
from acf.domain.ids import new_id
from acf.pipelines.agent_service import asks, replays, rows
from acf.pipelines.agent_service.hydration import build_request
from acf.pipelines.agent_service.protocol import ExecuteRequest
from acf.pipelines.agent_service.state import tool_log
from acf.ports.pipeline import TurnContext

PREPARE_STEP = "agent_service.prepare"
OTHER_PROFILE = "another profile of the agent took the conversation over"


@dataclass(frozen=True, slots=True)
class Prepared:
    request: ExecuteRequest
    """Without ``supersedes`` (the execution adds it)."""
    key: str
    supersedes: str | None
    expired: Mapping[str, Any] | None
    """The question that went stale in this turn (``ask_id``, ``asked_at_ms``), if any."""

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request.model_dump(mode="json"),
            "key": self.key,
            "supersedes": self.supersedes,
            "expired": None if self.expired is None else dict(self.expired),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Prepared":
        expired, supersedes = raw.get("expired"), raw.get("supersedes")
        return cls(
            ExecuteRequest.model_validate(raw["request"]),
            str(raw["key"]),
            None if supersedes is None else str(supersedes),
            dict(expired) if isinstance(expired, Mapping) else None,
        )


def site_of(ctx: TurnContext, profile: str) -> rows.Site:
    """Whose rows: the turn's tenant, conversation and agent."""
    correlation = ctx.correlation
    if correlation.session_id is None:
        raise ValueError("a turn's correlation names its session")
    newest = [*ctx.history, *ctx.messages]
    agent = newest[-1].key.agent if newest else ""
    return rows.Site(correlation.tenant, correlation.session_id, agent, profile)


async def prepare(ctx: TurnContext, fields: AgentServicePipelineFields) -> Prepared:
    """The turn's request and key (see the module)."""
    inputs = [m.message_id for m in ctx.messages]
    replay = None if ctx.replay is None else ctx.replay.dead_letter_id

    async def now(_inputs: Sequence[str], _replay: str | None) -> dict[str, Any]:
        return (await _prepare_now(ctx, fields)).to_json()

    return Prepared.from_json(await ctx.step(PREPARE_STEP, now, inputs, replay))


async def _prepare_now(ctx: TurnContext, fields: AgentServicePipelineFields) -> Prepared:
    sessions = ctx.agent_sessions
    now = ctx.clock.now_ms()
    replayed = replays.replayed_execution(ctx.replay, ctx.messages)
    open_row = await sessions.open()
    latest = await sessions.latest() if open_row is None or replayed is not None else None
    plan = asks.plan(
        open_row,
        latest,
        profile=fields.profile,
        now_ms=now,
        ask_timeout_s=fields.ask_user_timeout_s,
    )
    expired = None
    if plan.expired is not None:
        stale = plan.expired
        expired = {"ask_id": stale.pending_ask_id, "asked_at_ms": stale.asked_at_ms}
        await sessions.save(asks.abandoned(stale, now), "agent_service.ask_expired", **expired)
    if plan.closed is not None:
        await sessions.save(asks.abandoned(plan.closed, now, OTHER_PROFILE))
    if replayed is not None:
        plan = replays.replay_plan(plan, latest, replayed, fields.profile)
    request = await build_request(ctx, fields, plan, tool_log(ctx.state))
    input_fp = rows.fingerprint(request, ctx.correlation.group_id or "")
    choice = rows.choose_key(plan.row, input_fp, new_id, None if replayed is None else replayed.key)
    if not choice.reused:
        ahead = rows.written_ahead(
            plan.row,
            site_of(ctx, fields.profile),
            row_id=new_id(),
            key=choice.key,
            input_fp=input_fp,
            agent_session_id=request.agent_session_id,
            answering=plan.answer_to,
            now_ms=now,
        )
        await sessions.save(ahead)
    return Prepared(request, choice.key, choice.supersedes, expired)


async def row_of(ctx: TurnContext, prepared: Prepared) -> AgentSessionRow:
    """The row holding the prepared key: open until the turn commits how the execution
    ended (the agent's latest row is looked at too, for a row ended another way). Raises
    ``Conflict`` when no row holds it (only this turn group writes the conversation's
    rows, so that is a row removed behind acf's back: the attempt fails)."""
    sessions = ctx.agent_sessions
    found = await sessions.open()
    if found is None or found.execution_key != prepared.key:
        found = await sessions.latest()
    if found is None or found.execution_key != prepared.key:
        raise Conflict(f"no agent session row holds execution key {prepared.key}")
    return found
