"""``acf config preview``'s limits: the virtual time the sandbox may run after the last
message (``PreviewRequest.run_limit_ms``), and a PostgreSQL that cannot be reached (exit 2,
"cannot run", never 1, "changed")."""

import asyncio
import socket
from pathlib import Path

import httpx
import yaml
from typer.testing import CliRunner

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import open_sqlite_store
from acf.bootstrap import ToolBackends, build_agents, database_path
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.entrypoints.cli import app
from acf.ports.config_versions import PushVersion
from acf.preview.replay import PreviewRequest, preview
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel

TENANT = "shop"
SLOW_MS = 300
runner = CliRunner()


def config(folder: Path) -> Path:
    rule = {
        "name": "slow",
        "lane": "talk",
        "match": {"keywords": ["hello"]},
        "latency_ms": SLOW_MS,
        "reply": "Hello!",
    }
    rules = {"fallback": "Sorry?", "rules": [rule]}
    agent = {"pipeline": {"kind": "rules", "rules": rules}}
    tenant = {"channels": {"web": {"mode": "off"}}, "agents": {"support": agent}}
    path = folder / "acf.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tenants": {TENANT: tenant}}), "utf-8")
    return path


async def test_the_sandbox_runs_no_longer_than_run_limit_ms(tmp_path: Path) -> None:
    clock = SystemClock()
    store = await open_sqlite_store(database_path(tmp_path / "data"), clock)
    try:
        loaded = load_config(config(tmp_path))
        source = version_sources(loaded)[TENANT]
        push = PushVersion(
            TENANT,
            source.content_hash,
            source.source,
            source.resolved,
            source.provenance,
            "test",
            "slow",
            None,
            ApplyMode(source.apply),
            clock.now_ms(),
        )
        number = (await store.uow.commit(TENANT, [push])).get(push).version.number
        client = httpx.AsyncClient()
        agents = build_agents(loaded, ToolBackends(client))
        channel, wakeups = RecordingChannel(clock), InProcessWakeUps()
        runtime = Runtime(store, clock, agents, wakeups, channel)
        await runtime.start()
        try:
            key = SessionKey(TENANT, "support", "ann", Channel.WEB)
            await Ingress(agents, store.uow, wakeups, clock).accept(NewMessage(key, "m1", "hello"))
            async with asyncio.timeout(10):
                for _ in range(500):
                    if channel.replies_for("ann"):
                        break
                    await asyncio.sleep(0.02)
        finally:
            await runtime.stop()
            await client.aclose()

        # The last message's turn works SLOW_MS (virtual) before it answers.
        short = await preview(store, PreviewRequest(TENANT, number, sessions=1, run_limit_ms=50))
        assert [n for n in short.notes if "still busy 50 ms" in n], short.notes
        full = await preview(store, PreviewRequest(TENANT, number, sessions=1))
        assert full.notes == ()
        assert full.summary.changed == 0
    finally:
        await store.close()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_postgresql_cannot_run_the_preview() -> None:
    url = f"postgresql://acf:secret-pw@127.0.0.1:{closed_port()}/test"
    args = ["config", "preview", "1", "--tenant", TENANT, "--sessions", "1"]
    result = runner.invoke(app, [*args, "--database-url", url, "--fail-on-change", "replies"])
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "cannot reach PostgreSQL at postgresql://acf:***@127.0.0.1" in result.stderr
    assert "secret-pw" not in result.stderr
