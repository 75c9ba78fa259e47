"""``pipeline: {kind: agent_service}`` in the configuration file: it loads without reading
its secret or opening a connection, builds an ``AgentServicePipeline`` whose turns read
the history and take the time a service needs (the agent's own settings still win), and
an API key that is not set fails the turn as unauthorized, not the configuration."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.config.agent_service import AgentServicePipelineFields
from acf.config.kinds import pipeline_kind
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.pipelines.agent_service.execution import ExecutionFailed
from acf.pipelines.agent_service.failures import FailureKind
from acf.pipelines.agent_service.kind import (
    AGENT_SERVICE_DEADLINE_MS,
    AGENT_SERVICE_HISTORY_LIMIT,
)
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.ports.pipeline import ClosablePipeline, SupersedeHook
from tests.config.test_config_file import base, write

SECRET = "ACF_TEST_AGENT_SERVICE_KIND_KEY"


def config(tmp_path: Path, **settings: Any) -> Path:
    body = base()
    agent = body["tenants"]["acme"]["agents"]["support"]
    agent["pipeline"] = {
        "kind": "agent_service",
        "base_url": "http://127.0.0.1:9/",
        "profile": "support",
        "api_key": "${" + SECRET + "}",
    }
    if settings:
        agent["settings"] = settings
    return write(tmp_path, body)


async def test_it_builds_an_agent_service_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET, raising=False)  # not read while loading
    async with httpx.AsyncClient() as http:
        agents = build_agents(load_config(config(tmp_path)), ToolBackends(http, demo_tools()))
    binding = agents.get("acme", "support")
    pipeline = binding.pipeline
    assert isinstance(pipeline, AgentServicePipeline) and pipeline.name == "agent_service"
    assert isinstance(pipeline, SupersedeHook) and isinstance(pipeline, ClosablePipeline)
    assert pipeline.fields.base_url == "http://127.0.0.1:9"
    assert binding.settings.history_limit == AGENT_SERVICE_HISTORY_LIMIT
    assert binding.settings.deadline_ms == AGENT_SERVICE_DEADLINE_MS
    with pytest.raises(ExecutionFailed) as failed:
        await pipeline.setup.client()
    assert failed.value.kind is FailureKind.UNAUTHORIZED and SECRET in failed.value.message
    await pipeline.aclose()


async def test_the_agents_own_settings_win(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, history_limit=7, deadline_ms=5_000))
    async with httpx.AsyncClient() as http:
        agents = build_agents(loaded, ToolBackends(http, demo_tools()))
    settings = agents.get("acme", "support").settings
    assert (settings.history_limit, settings.deadline_ms) == (7, 5_000)


def test_the_version_follows_the_fields() -> None:
    kind = pipeline_kind("agent_service")

    def version(**changes: Any) -> str:
        fields = AgentServicePipelineFields.model_validate(
            {"kind": "agent_service", "base_url": "http://h", "profile": "p", **changes}
        )
        assert kind.load(fields, "here", Path(".")) is None
        built = kind.build(fields, None, [], "here")
        assert isinstance(built, AgentServicePipeline)
        return built.version

    assert version() == version()
    assert version(profile="q") != version()
    assert version(texts={"unavailable": "Down."}) != version()
