"""``acf config preview`` replays a session in a scenario's step as the runtime ran it.

Recorded by the whole service (``open_service``, versions on): the agent's pipeline puts
the session in scenario ``refund``, step ``collect`` (top-level ``scenario``/``step`` of
its state, ``StateV2``), so its next turn runs the step's variant. The preview must run
that variant too: the unchanged version differs in nothing, and a version that changes
only the step's reply differs in that reply (and fails ``--fail-on-change replies``).
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from acf.bootstrap import open_service, read_settings
from acf.bootstrap.settings import ConfigSource
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
from acf.domain.ids import new_id
from acf.domain.messages import NewMessage
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.turns import TurnPhase
from acf.entrypoints.cli import app
from acf.ports.config_versions import PushVersion
from acf.ports.pipeline import TurnContext

TENANT, AGENT = "shop", "support"
runner = CliRunner()


class EntersRefund:
    """Answers ``reply`` and puts the session in scenario ``refund``, step ``collect``."""

    name = "enters-refund"
    version = "1"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def run(self, ctx: TurnContext) -> PipelineResult:
        return PipelineResult.reply(
            self.reply, state_patch={"scenario": "refund", "step": "collect"}
        )


def build(reply: str) -> EntersRefund:
    return EntersRefund(reply)


def document(step_reply: str) -> dict[str, Any]:
    pipeline = {
        "kind": "python",
        "factory": f"{__name__}:build",
        "options": {"reply": "plain"},
    }
    step = {"pipeline": {"options": {"reply": step_reply}}}
    agent = {"pipeline": pipeline, "scenarios": {"refund": {"steps": {"collect": step}}}}
    tenant = {"channels": {"web": {"mode": "off"}}, "agents": {AGENT: agent}}
    return {"version": 1, "tenants": {TENANT: tenant}}


async def record(folder: Path) -> int:
    """Record one session (two turns: the agent's own, then the step's) under v1; push v2
    whose step answers otherwise. Returns v2's number."""
    first = folder / "v1.yaml"
    first.write_text(yaml.safe_dump(document("collecting")), encoding="utf-8")
    settings = read_settings({"data_dir": folder / "data"}, environ={})
    service = await open_service(load_config(first), settings)
    try:
        await service.serve_file_versions(ConfigSource.FILE)
        await service.start()
        key = SessionKey(TENANT, AGENT, "ann", Channel.WEB)
        replies = [await say(service, key, text) for text in ("hi", "I want a refund")]
        assert replies == ["plain", "collecting"]  # the second turn ran the step's variant
        second = folder / "v2.yaml"
        second.write_text(yaml.safe_dump(document("gathering")), encoding="utf-8")
        source = version_sources(load_config(second))[TENANT]
        op = PushVersion(
            TENANT,
            source.content_hash,
            source.source,
            source.resolved,
            source.provenance,
            "test",
            "the step answers otherwise",
            None,
            ApplyMode(source.apply),
            service.clock.now_ms(),
        )
        number: int = (await service.store.uow.commit(TENANT, [op])).get(op).version.number
        return number
    finally:
        await service.close()


async def say(service: Any, key: SessionKey, text: str) -> str:
    accepted = await service.ingress.accept(NewMessage(key, new_id(), text))
    async with asyncio.timeout(15):
        while True:
            turns = await service.store.turns.list_turns(TENANT, accepted.session_id)
            done = [t for t in turns if t.phase is TurnPhase.COMMITTED and t.to_seq >= accepted.seq]
            if done:
                found = await service.store.turns.get_record(TENANT, done[-1].turn_id)
                assert found is not None
                return str(found.replies[0])
            await asyncio.sleep(0.02)


def preview(folder: Path, version: int, *extra: str) -> tuple[int, dict[str, Any], str]:
    args = ["config", "preview", str(version), "--tenant", TENANT, "--json", "--sessions", "5"]
    result = runner.invoke(app, [*args, "--data-dir", str(folder / "data"), *extra])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    body = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, body, result.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    folder = tmp_path_factory.mktemp("preview-steps")
    return folder, asyncio.run(record(folder))


def test_the_unchanged_version_replays_the_step_as_it_ran(recorded: tuple[Path, int]) -> None:
    folder, _ = recorded
    code, body, err = preview(folder, 1, "--fail-on-change", "replies")
    assert code == 0, err
    assert body["summary"]["changed"] == 0
    (session,) = body["sessions"]
    assert session["changes"] == [] and session["problems"] == []


def test_a_change_in_the_step_only_is_seen_and_fails_the_gate(recorded: tuple[Path, int]) -> None:
    folder, changed = recorded
    code, body, err = preview(folder, changed, "--fail-on-change", "replies")
    assert code == 1, err
    assert "replies" in err
    (session,) = body["sessions"]
    assert session["changes"] == [
        {"kind": "replies", "position": 1, "before": "collecting", "after": "gathering"}
    ]
