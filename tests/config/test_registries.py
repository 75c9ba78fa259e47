"""The two registries the composition root looks names up in: pipeline kinds (each loads
its own files) and built-in tool sets (the demo registers ``commerce``)."""

import subprocess
import sys
import typing
from pathlib import Path

import httpx
import pytest

from acf.bootstrap import BuiltinTools, ToolBackends, build_agents
from acf.config.kinds import KIND_MODULES, pipeline_kind
from acf.config.load import ConfigError, load_config
from acf.config.pipelines import PipelineFields
from acf.demo import demo_tools
from acf.domain.errors import InvalidValue
from acf.pipelines.rules_model import RulesConfig
from tests.config.test_config_file import base, write


def test_each_kind_of_the_configuration_model_is_registered() -> None:
    (union, _discriminator) = typing.get_args(PipelineFields)
    kinds = {typing.get_args(f.model_fields["kind"].annotation)[0] for f in typing.get_args(union)}
    assert kinds == set(KIND_MODULES) == {"rules", "python", "llm", "agent_service", "router"}
    for name in KIND_MODULES:
        kind = pipeline_kind(name)
        assert callable(kind.load) and callable(kind.build)
    with pytest.raises(InvalidValue, match="unknown pipeline kind 'langgraph'"):
        pipeline_kind("langgraph")


def test_the_rules_kind_loads_its_file_and_counts_it_in_the_version(tmp_path: Path) -> None:
    body = base()
    pipeline = {"kind": "rules", "rules_file": "rules.yaml"}
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = pipeline
    rules = "fallback: '?'\nrules: [{name: hi, lane: info, match: {keywords: [hi]}, reply: a}]\n"
    (tmp_path / "rules.yaml").write_text(rules, "utf-8")
    first = load_config(write(tmp_path, body))
    assert isinstance(first.pipeline_files[("acme", "support")], RulesConfig)
    (tmp_path / "rules.yaml").write_text(rules.replace("reply: a", "reply: b"), "utf-8")
    assert load_config(write(tmp_path, body)).version != first.version


def test_a_builtin_set_this_process_does_not_offer_is_a_config_error(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, base()))
    with pytest.raises(ConfigError, match=r"tools\.0\.builtin: no builtin tools 'commerce'"):
        build_agents(loaded, ToolBackends(httpx.AsyncClient(), BuiltinTools()))


def test_each_tenant_gets_its_own_builtin_backend(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["globex"] = body["tenants"]["acme"]
    made: list[int] = []
    demo = demo_tools()
    tools = BuiltinTools()

    def counted() -> list[object]:
        made.append(1)
        return list((demo.make("commerce") or {}).values())

    tools.register("commerce", counted)
    build_agents(load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), tools))
    assert len(made) == 2
    with pytest.raises(ValueError, match="registered already"):
        tools.register("commerce", counted)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("acf.config.load", "acf.pipelines"), ("acf.bootstrap", "acf.demo")],
)
def test_the_layers_do_not_import_outward(module: str, forbidden: str) -> None:
    code = (
        f"import sys, {module}; "
        f"print(sorted(m for m in sys.modules if m.startswith({forbidden!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
