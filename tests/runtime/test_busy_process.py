"""A process starved by CPU-bound pipelines — its event loop blocked longer than a lease
lives, so no renewal runs in time — still commits every turn's real reply on its first
attempt: no fallback, no flag for a person, no lost lease (issue 17). Real time, real SQLite.
"""

import asyncio
import time
from pathlib import Path

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite import open_sqlite_store
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.messages import NewMessage
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.turns import TurnPhase
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime import Runtime, RuntimeSettings
from acf.testing.channel import RecordingChannel

LEASE = LeaseSettings(ttl_ms=200, renew_every_ms=50)
SESSIONS = 6
BLOCK_S = 0.3
"""Each pipeline holds the loop this long: past the lease's TTL."""


class CpuBound:
    name, version = "cpu-bound", "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - a pipeline that computes without yielding
        return PipelineResult.reply(f"answer to {ctx.messages[-1].text} (attempt {ctx.attempt})")


async def test_turns_of_a_starved_process_all_commit_their_real_reply(tmp_path: Path) -> None:
    clock = SystemClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    settings = AgentSettings(channel_policies={Channel.WEB: ChannelPolicy(AccumulationMode.OFF)})
    agents = Agents({"t1": {"a1": AgentBinding(CpuBound(), settings)}})
    wakeups = InProcessWakeUps()
    channel = RecordingChannel(clock)
    runtime = Runtime(store, clock, agents, wakeups, channel, settings=RuntimeSettings(LEASE))
    ingress = Ingress(agents, store.uow, wakeups, clock)
    await runtime.start()
    try:
        keys = [SessionKey("t1", "a1", f"c{i}", Channel.WEB) for i in range(SESSIONS)]
        accepted = await asyncio.gather(
            *(ingress.accept(NewMessage(k, f"m{i}", text=f"q{i}")) for i, k in enumerate(keys))
        )
        for _ in range(6_000):  # until every reply went out (bounded: never hangs)
            if len(channel.sends) >= SESSIONS and runtime.busy == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await runtime.stop()
    try:
        assert sorted(channel.replies_for()) == sorted(
            f"answer to q{i} (attempt 1)" for i in range(SESSIONS)
        )
        events = await store.events.query("t1", EventQuery(limit=10_000))
        kinds = [e.kind for e in events]
        assert EventKind.TURN_FAILED not in kinds
        assert EventKind.LEASE_LOST not in kinds
        for a in accepted:
            turns = await store.turns.list_turns("t1", a.session_id)
            assert [(t.phase, t.attempt) for t in turns] == [(TurnPhase.COMMITTED, 1)]
            session = await store.sessions.get("t1", a.session_id)
            assert session is not None and not session.flagged
    finally:
        await store.close()
