"""Hot apply across processes (DESIGN §17, distributed mode): one API process and two
workers (`acf serve --role api|worker`) on one PostgreSQL database switch to a new live
version with no restart, and never answer one session with a mix of versions.

The version is pushed and promoted through the store's ops from this process and announced
with ``NOTIFY acf_config`` (what `acf config promote` does). Sessions opened before the
promote keep v1 (``apply: session_close``); sessions opened after it get v2 — every turn of
a session carries one label and that version's reply.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from acf.adapters.memory.clock import SystemClock
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.config_changes import PgConfigChanges
from acf.adapters.postgres.store import PgStore, libpq_url
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.config_versions import ApplyMode
from acf.domain.ids import new_id
from acf.domain.turns import TurnPhase
from acf.ports.api_keys import new_api_key
from acf.ports.config_versions import PromoteVersion, PushVersion
from tests.http.conftest import free_port

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
TENANT = "acme"
AGENT = "support"
WAIT_S = 30.0


def body(reply: str) -> dict[str, Any]:
    rules = {
        "fallback": reply,
        "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": reply}],
    }
    tenant = {
        "limits": {"accepted_messages": "1000/second"},
        "channels": {"web": {"mode": "off"}},
        "agents": {AGENT: {"pipeline": {"kind": "rules", "rules": rules}}},
    }
    return {"version": 1, "tenants": {TENANT: tenant}}


def _env(database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    env["ACF_DATABASE_URL"] = libpq_url(database)
    env["ACF_LOG_LEVEL"] = "WARNING"
    return env


async def _started(process: subprocess.Popen[str], marker: str) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT_S)
    assert marker in line, line


@pytest.fixture
async def processes(database: str, tmp_path: Path) -> AsyncIterator[str]:
    """One API process and two workers on ``database``; yields the API's base URL."""
    config = tmp_path / "acf.yaml"
    config.write_text(yaml.safe_dump(body("one")), encoding="utf-8")
    port = free_port()
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*ACF, "serve", "--config", str(config), *args],
            env=_env(database),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        return process

    try:
        api = start("--role", "api", "--port", str(port))
        await _started(api, "acf is serving")
        for _ in range(2):  # one after the other: each pushes the same file (v1 stays)
            await _started(start("--role", "worker"), "acf worker running")
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.communicate(timeout=30)  # and its pipe closed
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


async def push_and_promote(store: PgStore, database: str, tmp_path: Path) -> int:
    path = tmp_path / "acf-v2.yaml"
    path.write_text(yaml.safe_dump(body("two")), encoding="utf-8")
    source = version_sources(load_config(path))[TENANT]
    now = SystemClock().now_ms()
    op = PushVersion(
        TENANT,
        source.content_hash,
        source.source,
        source.resolved,
        source.provenance,
        "test",
        "v2",
        None,
        ApplyMode.SESSION_CLOSE,
        now,
    )
    number: int = (await store.uow.commit(TENANT, [op])).get(op).version.number
    await store.uow.commit(TENANT, [PromoteVersion(TENANT, number, now, "test")])
    changes = PgConfigChanges(database)
    try:
        await changes.announce(TENANT)
    finally:
        await changes.close()
    return number


async def replies_of(store: PgStore, session_id: str) -> list[tuple[str | None, str]]:
    """Each committed turn's (config_version label, reply), in order."""
    out = []
    for turn in await store.turns.list_turns(TENANT, session_id):
        if turn.phase is TurnPhase.COMMITTED:
            record = await store.turns.get_record(TENANT, turn.turn_id)
            assert record is not None
            out.append((record.correlation.config_version, record.replies[0]))
    return out


async def converse(
    client: httpx.AsyncClient, store: PgStore, customer: str, turns: int
) -> tuple[str, list[tuple[str | None, str]]]:
    """``turns`` messages from ``customer``, each once the previous one was answered."""
    session_id = ""
    for _ in range(turns):
        message = {"agent": AGENT, "customer": customer, "client_message_id": new_id()}
        posted = await client.post("/v1/messages", json={**message, "text": "hi"})
        assert posted.status_code == 202, posted.text
        session_id, seq = posted.json()["session_id"], posted.json()["seq"]
        async with asyncio.timeout(WAIT_S):  # one message, one turn (accumulation off)
            while len(await replies_of(store, session_id)) < seq:  # noqa: ASYNC110 - polling the store
                await asyncio.sleep(0.05)
    return session_id, await replies_of(store, session_id)


async def test_workers_and_api_switch_versions_without_restart_and_never_mix(
    processes: str, database: str, tmp_path: Path
) -> None:
    store = await open_pg_store(database, SystemClock(), pool_size=2)
    try:
        key = new_api_key()
        await store.api_keys.create(TENANT, "test", key, SystemClock().now_ms())
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=processes, headers=headers, timeout=10) as client:
            before = [f"early-{i}" for i in range(4)]
            firsts = await asyncio.gather(*(converse(client, store, c, 1) for c in before))
            assert all(r == [("v1", "one")] for _, r in firsts)

            assert await push_and_promote(store, database, tmp_path) == 2

            # the early sessions go on (pinned to v1) while new ones start on v2
            after = [f"late-{i}" for i in range(4)]
            early = asyncio.gather(*(converse(client, store, c, 3) for c in before))
            late = asyncio.gather(*(converse(client, store, c, 3) for c in after))
            old, new = await asyncio.gather(early, late)
        for _, replies in old:
            assert replies == [("v1", "one")] * 4  # never a mix: one version per session
        for _, replies in new:
            assert replies == [("v2", "two")] * 3
    finally:
        await store.close()


async def test_an_announcement_reaches_every_process_listening(database: str) -> None:
    """``PgConfigChanges``: a NOTIFY on ``acf_config`` carries the tenant to each listener
    (another process's, and the announcer's own), and a writer outside acf may send it."""
    writer, reader = PgConfigChanges(database), PgConfigChanges(database)
    heard: list[str] = []
    got = asyncio.Event()

    async def learn(tenant: str) -> None:
        heard.append(tenant)
        got.set()

    reader.subscribe(learn)
    try:
        assert await reader.start()
        await writer.announce(TENANT)
        await asyncio.wait_for(got.wait(), 10)
        assert heard == [TENANT]
        got.clear()
        with psycopg.connect(libpq_url(database), autocommit=True) as conn:  # anyone's NOTIFY
            conn.execute("NOTIFY acf_config, 'globex'")
        await asyncio.wait_for(got.wait(), 10)
        assert heard == [TENANT, "globex"]
    finally:
        await writer.close()
        await reader.close()
