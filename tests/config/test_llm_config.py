"""``pipeline: {kind: llm}`` in the configuration file: its fields, the prompt file, the
API key as a secret reference, claim patterns checked against the agent's tools, and the
agent built from it (no connection and no secret read until the first request)."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.config.load import ConfigError, load_config
from acf.demo import demo_tools
from acf.pipelines.llm.completion import LlmUnavailable
from acf.pipelines.llm.kind import LLM_HISTORY_LIMIT, LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.testing import VirtualClock
from tests.config.test_config_file import base, error_of, write

YAML = """
version: 1
tenants:
  acme:
    display_name: Acme Outdoor
    tools:
      - {name: lookup_order, builtin: commerce}
      - {name: refund_order, builtin: commerce}
    agents:
      support:
        pipeline:
          kind: llm
          model: gpt-4o-mini
          base_url: http://127.0.0.1:11434/v1/
          api_key: ${ACF_TEST_LLM_KEY}
          system_prompt_file: prompts/support.txt
          temperature: 0.2
          max_tokens: 600
          fallback_models: [gpt-4o, gpt-4o-mini]
          prices: {gpt-4o-mini: {input: 0.15, output: 0.6}}
          enforcement:
            max_chars: 1200
            banned_phrases: [guarantee]
            required_disclosure: "I am an automated assistant."
            claims:
              refund_order: ['\\bI(?: have|''ve)? refunded\\b']
          locale: en-GB
        tools: [lookup_order, refund_order]
"""
PROMPT = "You are the support agent of {tenant_display_name} ({locale}).\n"


def project(tmp_path: Path, prompt: str = PROMPT) -> Path:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts" / "support.txt").write_text(prompt, "utf-8")
    return write(tmp_path, YAML)


def llm(**fields: Any) -> dict[str, Any]:
    body = base()
    pipeline = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1", **fields}
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = pipeline
    return body


def test_the_issue_yaml_loads_and_builds_an_llm_agent(tmp_path: Path) -> None:
    loaded = load_config(project(tmp_path))
    pipeline_fields = loaded.config.tenants["acme"].agents["support"].pipeline
    assert pipeline_fields.kind == "llm"
    assert pipeline_fields.base_url == "http://127.0.0.1:11434/v1"  # no trailing slash
    assert pipeline_fields.models == ("gpt-4o-mini", "gpt-4o")
    assert (pipeline_fields.history_tokens, pipeline_fields.max_tool_rounds) == (4000, 6)
    agents = build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))
    binding = agents.get("acme", "support")
    pipeline = binding.pipeline
    assert isinstance(pipeline, LlmPipeline)
    assert pipeline.setup.prompt.template == PROMPT
    assert pipeline.setup.prompt.tenant_display_name == "Acme Outdoor"
    names = [f["function"]["name"] for f in pipeline.setup.schemas.functions]
    assert names[:2] == ["lookup_order", "refund_order"]
    assert binding.agent_version.endswith(f"llm/{pipeline.version}")
    assert isinstance(pipeline.setup.completer, LazyClient)


def test_the_prompt_file_counts_in_the_version(tmp_path: Path) -> None:
    first = load_config(project(tmp_path)).version
    assert load_config(project(tmp_path)).version == first
    assert load_config(project(tmp_path, "Another prompt.")).version != first


def test_the_api_key_is_a_secret_reference_listed_while_missing(tmp_path: Path) -> None:
    loaded = load_config(project(tmp_path))
    assert loaded.missing_secrets({}) == ["ACF_TEST_LLM_KEY"]
    assert loaded.missing_secrets({"ACF_TEST_LLM_KEY": "x"}) == []
    problem = error_of(tmp_path, llm(api_key="sk-live-123"))
    assert "pipeline.api_key: Value error, must reference a secret as ${NAME}" in problem
    assert "sk-live-123" not in problem


async def test_a_missing_secret_fails_the_first_request_not_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACF_TEST_LLM_KEY", raising=False)
    loaded = load_config(project(tmp_path))
    agents = build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))
    pipeline = agents.get("acme", "support").pipeline
    assert isinstance(pipeline, LlmPipeline)
    clock = VirtualClock()
    with pytest.raises(LlmUnavailable, match="ACF_TEST_LLM_KEY is not set"):
        await pipeline.setup.completer.complete({"messages": []}, clock=clock, deadline_ms=1)
    await pipeline.aclose()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"base_url": "ftp://x"},
            "pipeline.base_url: Value error, expected an http:// or https://",
        ),
        ({"base_url": "http://u:p@x/v1"}, "credentials do not belong in the URL"),
        (
            {"system_prompt": "a", "system_prompt_file": "b.txt"},
            "expected at most one of system_prompt and system_prompt_file",
        ),
        ({"temperature": 3}, "pipeline.temperature: Input should be less than or equal to 2"),
        ({"max_tool_rounds": 0}, "pipeline.max_tool_rounds: Input should be greater than"),
        ({"history_tokens": -1}, "pipeline.history_tokens: Input should be greater than"),
        ({"user_context": ["secrets"]}, "pipeline.user_context.0: Input should be"),
        ({"prices": {"m": {"input": -1, "output": 1}}}, "pipeline.prices.m.input"),
        ({"enforcement": {"claims": {"lookup_order": ["("]}}}, "invalid regular expression"),
        ({"mystery": 1}, "pipeline.mystery: Extra inputs are not permitted"),
        ({"system_prompt_file": "missing.txt"}, "pipeline.system_prompt_file: no such file"),
    ],
)
def test_invalid_fields_name_the_field(
    tmp_path: Path, fields: dict[str, Any], problem: str
) -> None:
    assert problem in error_of(tmp_path, llm(**fields))


def test_claims_name_the_agents_tools(tmp_path: Path) -> None:
    body = llm(enforcement={"claims": {"refund_order": ["refunded"]}})
    loaded = load_config(write(tmp_path, body))
    with pytest.raises(ConfigError, match=r"enforcement\.claims: \['refund_order'\] are not"):
        build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))


def test_an_inline_prompt_and_no_prompt_at_all(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, llm(system_prompt="Be {agent}.")))
    agents = build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))
    pipeline = agents.get("acme", "support").pipeline
    assert isinstance(pipeline, LlmPipeline)
    assert pipeline.setup.prompt.template == "Be {agent}."
    bare = load_config(write(tmp_path, llm(), "bare.yaml"))
    assert bare.missing_secrets({}) == []  # no api_key: an endpoint without authentication
    agents = build_agents(bare, ToolBackends(httpx.AsyncClient(), demo_tools()))
    pipeline = agents.get("acme", "support").pipeline
    assert isinstance(pipeline, LlmPipeline) and pipeline.setup.prompt.template is None


async def test_an_llm_agent_reads_a_longer_history_unless_its_settings_say_otherwise(
    tmp_path: Path,
) -> None:
    body = base()
    agents = body["tenants"]["acme"]["agents"]
    llm = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    agents["support"]["pipeline"] = llm
    agents["support"]["tools"] = []
    agents["short"] = {"pipeline": llm, "settings": {"history_limit": 5}}
    async with httpx.AsyncClient() as http:
        built = build_agents(load_config(write(tmp_path, body)), ToolBackends(http, demo_tools()))
    assert built.get("acme", "support").settings.history_limit == LLM_HISTORY_LIMIT
    assert built.get("acme", "short").settings.history_limit == 5
