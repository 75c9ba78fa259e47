"""``acf dead-letters list|replay`` against the embedded file and PostgreSQL (DESIGN §16).

The embedded file: listed and marked while no acf runs (a running one holds the file: the
command says to use its API), and the replay runs when the runtime next starts. PostgreSQL:
a runtime in this process plays the running worker; the command, another client of the
database, marks the letter and wakes it with NOTIFY, and the replay runs once.
"""

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acf.adapters.memory.clock import SystemClock
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.postgres.wakeup import PgWakeUps
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.ids import new_id
from acf.domain.messages import NewMessage
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.entrypoints.cli import app
from acf.ports.agent_binding import AgentBinding
from acf.ports.dead_letters import DeadLetter
from acf.ports.pipeline import TurnContext
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script

FAILING = Script(steps=({"raise": "model down"},))
ONE_ATTEMPT = AgentSettings(max_attempts=1)
runner = CliRunner()


def acf(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dead-letters", *args])
    return result.exit_code, result.stdout, result.stderr


async def a_failed_turn(data_dir: Path) -> DeadLetter:
    async with Harness(data_dir, HarnessOptions(script=FAILING, settings=ONE_ATTEMPT)) as h:
        await h.send("ana", "Refund order 7.")
        await h.run_until_idle()
        (letter,) = await h.store.dead_letters.list(TENANT)
        return letter


def test_the_embedded_file_lists_marks_and_replays_at_the_next_start(tmp_path: Path) -> None:
    letter = asyncio.run(a_failed_turn(tmp_path))
    data = ["--data-dir", str(tmp_path)]
    code, out, _ = acf("list", "--tenant", TENANT, "--json", *data)
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and listed["dead_letter_id"] == letter.dead_letter_id
    assert listed["request"] == {"messages": ["Refund order 7."]}
    assert "1 dead letter(s)" in acf("list", "--tenant", TENANT, *data)[1]
    assert "0 dead letter(s)" in acf("list", "--tenant", "t2", *data)[1]

    code, _, err = acf("replay", letter.dead_letter_id, "--tenant", "t2", *data)
    assert code == 1 and "has no dead letter" in err
    code, out, _ = acf("replay", letter.dead_letter_id, "--tenant", TENANT, *data)
    assert code == 0 and "requested" in out
    code, _, err = acf("replay", letter.dead_letter_id, "--tenant", TENANT, *data)
    assert code == 1 and "already replayed" in err
    code, _, err = acf("list", "--tenant", TENANT, "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "no database" in err

    async def next_start() -> None:
        async with Harness(tmp_path, HarnessOptions(settings=ONE_ATTEMPT)) as h:
            # A running acf holds the file: the command points to its API.
            code, _, err = await asyncio.to_thread(acf, "list", "--tenant", TENANT, *data)
            assert code == 1 and "POST /v1/dead-letters/ID/replay" in err
            await h.run_until_idle()  # the start-up recovery found the requested replay
            assert h.replies("ana") == ["echo: Refund order 7."]
            done = await h.store.dead_letters.get(TENANT, letter.dead_letter_id)
            assert done is not None and done.replay_turn_id is not None

    asyncio.run(next_start())


class BackAfterFailing:
    """Fails until told the brain is back, then answers."""

    name = "flaky"
    version = "1"

    def __init__(self) -> None:
        self.back = False

    async def run(self, ctx: TurnContext) -> PipelineResult:
        if not self.back:
            raise RuntimeError("the model is down")
        asked = [] if ctx.replay is None else ctx.replay.request.get("messages", [])
        return PipelineResult.reply(f"replayed: {' '.join(asked)}")


async def eventually_letter(store: Store, check: str) -> DeadLetter:
    async with asyncio.timeout(15):
        while True:
            letters = await store.dead_letters.list(TENANT)
            if letters and (check == "recorded" or letters[0].replay_turn_id is not None):
                return letters[0]
            await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_postgresql_replay_wakes_a_running_worker(url: str) -> None:
    database_url = libpq_url(url)
    clock = SystemClock()
    store = await open_pg_store(database_url, clock, pool_size=4, name="acf-test-worker")
    wakeups = PgWakeUps(database_url, application_name="acf-test-worker")
    pipeline = BackAfterFailing()
    agents = Agents({TENANT: {"a1": AgentBinding(pipeline, ONE_ATTEMPT)}})
    channel = RecordingChannel(clock)
    runtime = Runtime(store, clock, agents, wakeups, channel)
    try:
        await runtime.start()
        assert await wakeups.start()
        ingress = Ingress(agents, store.uow, wakeups, clock)
        key = SessionKey(TENANT, "a1", f"ana-{new_id()[:8]}", Channel.EMAIL)
        await ingress.accept(NewMessage(key, new_id(), text="Refund order 7."))
        letter = await eventually_letter(store, "recorded")
        pipeline.back = True

        args = ["replay", letter.dead_letter_id, "--tenant", TENANT, "--database-url"]
        code, out, err = await asyncio.to_thread(acf, *args, database_url)
        assert code == 0, err
        assert "requested" in out
        done = await eventually_letter(store, "replayed")
        assert channel.replies_for(key.customer)[-1] == "replayed: Refund order 7."
        again = await asyncio.to_thread(acf, *args, database_url)
        assert again[0] == 1 and "already replayed" in again[2]
        turns = await store.turns.list_turns(TENANT, letter.session_id)
        assert [t.turn_id for t in turns if t.from_seq == t.to_seq] == [done.replay_turn_id]
    finally:
        await runtime.stop()
        await wakeups.close()
        await store.close()
