"""``preview``: replay recorded sessions through a version in a sandbox and diff the result.

The chosen sessions' inbound messages are accepted again, in their recorded order and at
their recorded times (a virtual clock that starts at the first one), by the sandbox's real
ingress and runtime under the version's agents (each turn under the variant its session's
state names: scenario, step, runtime overrides), for at most ``run_limit_ms`` of virtual
time after the last one. The tenant's store is only read: the version, the sessions, their
ledger rows (served back as tool results, each replayed session only its own) and their
memoised completions. A replayed turn is attributed to the recorded session whose message
ends its range; a session whose key had an earlier chosen session starts, as it did, on a fresh
session (the earlier one is closed in the sandbox when idle).

A recorded press of a confirmation's button names the question asked then; it is replayed
as the same answer (yes or no) to the question the sandbox's session has pending. Not
replayed: typing signals and delivery receipts (not recorded with the messages), and a
message's own route (it is replayed under its session's key).
"""

import dataclasses
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acf.bootstrap import BuiltinTools
from acf.domain.errors import AcfError, InvalidValue
from acf.domain.ids import GroupId, SessionId, TenantId
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.turns import Turn
from acf.ports.store import Store
from acf.preview.agents import ModelWiring, sandbox_agents
from acf.preview.diff import SessionDiff, Summary, diff_views, summarise
from acf.preview.recorded import PreviewError, RecordedSession, choose, read, view_of
from acf.preview.recorded_model import InFlight, ModelTally, Recordings
from acf.preview.recorded_tools import RecordedResults
from acf.preview.sandbox import Sandbox
from acf.service.agents import Agents

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    tenant: str
    version: int
    session_id: str | None = None
    sessions: int | None = None
    llm_base_url: str | None = None
    builtin: BuiltinTools | None = None
    """The built-in tool sets the version may name (their specs only: never run)."""
    run_limit_ms: int = DAY_MS
    """Virtual time the sandbox may run after the last message."""


@dataclass(frozen=True, slots=True)
class PreviewReport:
    tenant: str
    version: str
    sessions: tuple[SessionDiff, ...]
    summary: Summary
    tool_calls: int
    """Calls the replay made, every one answered by the recorded-results backend."""
    sandbox_sends: int
    """Replies the sandbox's recording channel took (none reached a real channel)."""
    model_reused: int = 0
    model_live: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "version": self.version,
            "summary": self.summary.to_json(),
            "sessions": [s.to_json() for s in self.sessions],
            "tool_calls": self.tool_calls,
            "sandbox_sends": self.sandbox_sends,
            "model": {"reused": self.model_reused, "live": self.model_live},
            "notes": list(self.notes),
        }


async def preview(store: Store, request: PreviewRequest) -> PreviewReport:
    """Raises ``PreviewError`` (no such version or session, a version that cannot be
    replayed safely, model requests with no recorded answer and no live model)."""
    from acf.config.versions_source import load_version

    tenant = TenantId(request.tenant)
    version = await store.config_versions.get(tenant, request.version)
    if version is None:
        raise PreviewError(f"tenant {tenant} has no configuration version {request.version}")
    chosen = await choose(store, tenant, request.session_id, request.sessions)
    recorded = [await read(store, tenant, record) for record in chosen]
    with tempfile.TemporaryDirectory(prefix="acf-preview-") as tmp:
        try:
            loaded = load_version(version.source, Path(tmp) / "version")
        except InvalidValue as exc:  # ConfigError too
            raise PreviewError(f"{version.label} does not load: {exc}") from None
        results = RecordedResults(e for r in recorded for e in r.ledger)
        groups = [GroupId(g) for r in recorded for g in r.groups]
        inflight, tally = InFlight(), ModelTally()
        wiring = ModelWiring(
            Recordings(store.memo, tenant, groups), inflight, tally, request.llm_base_url
        )
        agents, client = sandbox_agents(version, loaded, results, wiring, request.builtin)
        try:
            replayed = await _replay(
                Path(tmp) / "sandbox", agents, recorded, inflight, results, request.run_limit_ms
            )
        finally:
            for pipeline in agents.pipelines():
                close = getattr(pipeline, "aclose", None)
                if close is not None:
                    await close()
            await client.aclose()
    diffs, sends, notes = replayed
    if agents.refused:
        raise PreviewError(agents.refused[0])
    if tally.misses:
        shown = "; ".join(repr(m) for m in tally.misses[:3])
        raise PreviewError(
            f"{len(tally.misses)} model request(s) of {version.label} differ from every "
            f"recorded one (newest message: {shown}): pass --llm-base-url to answer them "
            "with a live model"
        )
    return PreviewReport(
        tenant=tenant,
        version=version.label,
        sessions=tuple(diffs),
        summary=summarise(diffs),
        tool_calls=results.calls,
        sandbox_sends=sends,
        model_reused=tally.reused,
        model_live=tally.live,
        notes=tuple(notes),
    )


async def _replay(
    data_dir: Path,
    agents: Agents,
    recorded: Sequence[RecordedSession],
    inflight: InFlight,
    results: RecordedResults,
    run_limit_ms: int,
) -> tuple[list[SessionDiff], int, list[str]]:
    timeline = sorted(
        (
            (m.received_at_ms, index, m.seq, r, m)
            for index, r in enumerate(recorded)
            for m in r.messages
        ),
        key=lambda x: x[:3],
    )
    owner: dict[tuple[SessionId, int], SessionId] = {}
    problems: dict[SessionId, list[str]] = defaultdict(list)
    notes: list[str] = []
    start = timeline[0][0] if timeline else 0
    sandbox = Sandbox(data_dir, agents, start, inflight)
    last_on_key: dict[SessionKey, SessionId] = {}

    async def recorded_session_of(execution_id: str) -> SessionId | None:
        """The recorded session a sandbox tool call replays: the one whose message ends
        its turn's range (else the one replayed last on its session's key)."""
        tenant = recorded[0].record.key.tenant
        entry = await sandbox.store.ledger.get(tenant, execution_id)
        if entry is None:
            return None
        turn = await sandbox.store.turns.get(tenant, entry.turn_id)
        found = None if turn is None else owner.get((turn.session_id, turn.to_seq))
        if found is None:
            session = await sandbox.store.sessions.get(tenant, entry.session_id)
            found = None if session is None else last_on_key.get(session.key)
        return found

    results.session_of = recorded_session_of
    async with sandbox:
        for at_ms, _, _, session, message in timeline:
            await sandbox.advance(max(0, at_ms - sandbox.clock.now_ms()))
            rid, key = session.record.session_id, session.record.key
            if last_on_key.get(key, rid) != rid and not await sandbox.close_open(
                key, "preview: the next recorded session starts"
            ):
                problems[rid].append("replayed on the same session as the one before it")
            last_on_key[key] = rid
            button = message.button
            if button is not None:
                pressed = await sandbox.confirmation_button(key, button.button_id)
                button = dataclasses.replace(button, button_id=pressed)
            try:
                new = NewMessage(
                    key,
                    message.provider_message_id,
                    text=message.text,
                    button=button,
                    media=message.media,
                    provider_timestamp_ms=message.provider_timestamp_ms,
                    sender_name=message.sender_name,
                )
                accepted = await sandbox.accept(new)
            except AcfError as exc:
                problems[rid].append(f"message {message.seq} not accepted: {exc}")
                continue
            owner[(accepted.session_id, accepted.seq)] = rid
            await sandbox.settle()
        try:
            await sandbox.run_until_idle(limit_ms=run_limit_ms)
        except TimeoutError as exc:
            notes.append(
                f"the sandbox was still busy {run_limit_ms} ms (virtual) after the last "
                f"message: {exc}"
            )
        diffs = [
            await _diff(sandbox, session, owner, problems[session.record.session_id], results)
            for session in recorded
        ]
        sends = len(sandbox.channel.sends)
    return diffs, sends, notes


async def _diff(
    sandbox: Sandbox,
    session: RecordedSession,
    owner: dict[tuple[SessionId, int], SessionId],
    problems: list[str],
    results: RecordedResults,
) -> SessionDiff:
    record = session.record
    rid, tenant = record.session_id, record.key.tenant
    mine = sorted({sid for (sid, _), r in owner.items() if r == rid})

    def owns(turn: Turn) -> bool:
        return owner.get((turn.session_id, turn.to_seq)) == rid

    replayed = await view_of(sandbox.store, tenant, mine, owns, results.sandboxed)
    return SessionDiff(
        session_id=rid,
        agent=record.key.agent,
        customer=record.key.customer,
        channel=record.key.channel.value,
        messages=len(session.messages),
        changes=tuple(diff_views(session.view, replayed)),
        sandbox_calls=sum(c.sandbox for c in replayed.tool_calls),
        problems=tuple(problems),
    )
