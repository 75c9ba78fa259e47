"""``pipeline: {kind: router}`` in the configuration file: each route loaded, checked and
built by its own kind (files beside the configuration file, errors naming the route), route
names checked, no router inside a router, the settings a router's children need, and the
classifier (an ``llm`` route's model, for the rules that ``classify``)."""

from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.config.kinds import pipeline_kind
from acf.config.load import ConfigError, load_config
from acf.config.pipelines import ChildPipelineFields, LlmPipelineFields, RouterPipelineFields
from acf.demo import demo_tools
from acf.demo.commerce import LOOKUP_ORDER
from acf.domain.errors import InvalidValue
from acf.pipelines.agent_service.kind import AGENT_SERVICE_DEADLINE_MS
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.kind import LLM_HISTORY_LIMIT
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.routing.kind import CHILD_KINDS, KIND, largest_defaults
from acf.pipelines.routing.pipeline import RouterPipeline, Service
from acf.pipelines.rules import RulesPipeline
from acf.testing.pipeline import Script, ScriptedPipeline
from tests.config.test_config_file import RULES, base, error_of, write

YAML = """
version: 1
tenants:
  acme:
    display_name: Acme Outdoor
    tools:
      - {name: lookup_order, builtin: commerce}
    agents:
      support:
        tools: [lookup_order]
        pipeline:
          kind: router
          default: direct
          fallback: direct
          rules:
            - {route: scripted, commands: [/rules, "@rules"]}
            - {route: agent, commands: [/agent]}
            - {route: scripted, keywords: [order status], regex: 'order\\s*#?\\d+'}
          routes:
            direct:
              kind: llm
              model: m
              base_url: http://127.0.0.1:9/v1
              system_prompt_file: prompts/support.txt
            scripted:
              kind: rules
              rules_file: rules/support.yaml
            agent:
              kind: agent_service
              base_url: http://127.0.0.1:8700/
              profile: support
              api_key: ${ACF_TEST_AGENT_KEY}
"""
RULES_FILE = """
fallback: "?"
rules:
  - name: status
    lane: info
    match: {keywords: [order]}
    call: {tool: lookup_order, args: {order_id: "1"}}
    reply: ok
"""


def project(tmp_path: Path, prompt: str = "You help {tenant_display_name}.") -> Path:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "prompts" / "support.txt").write_text(prompt, "utf-8")
    (tmp_path / "rules" / "support.yaml").write_text(RULES_FILE, "utf-8")
    return write(tmp_path, YAML)


def router(**fields: Any) -> dict[str, Any]:
    body = base()
    pipeline = {
        "kind": "router",
        "default": "scripted",
        "routes": {"scripted": {"kind": "rules", "rules": RULES}},
        **fields,
    }
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = pipeline
    return body


async def test_each_route_is_loaded_and_built_by_its_kind(tmp_path: Path) -> None:
    loaded = load_config(project(tmp_path))
    async with httpx.AsyncClient() as http:
        agents = build_agents(loaded, ToolBackends(http, demo_tools()))
    binding = agents.get("acme", "support")
    pipeline = binding.pipeline
    assert isinstance(pipeline, RouterPipeline) and pipeline.name == "router"
    direct, scripted = pipeline.children["direct"], pipeline.children["scripted"]
    assert isinstance(direct, LlmPipeline) and isinstance(scripted, RulesPipeline)
    # the child's files are read relative to the configuration file, for the agent's site
    assert direct.setup.prompt.template == "You help {tenant_display_name}."
    assert direct.setup.prompt.tenant_display_name == "Acme Outdoor"
    assert [t.name for t in direct.setup.specs] == ["lookup_order"]
    assert isinstance(pipeline.children["agent"], AgentServicePipeline)
    assert pipeline.services == {"agent": Service("http://127.0.0.1:8700", "support")}
    assert loaded.missing_secrets({}) == ["ACF_TEST_AGENT_KEY"]  # read at call time only
    assert binding.agent_version.endswith(f"router/{pipeline.version}")
    assert binding.settings.history_limit == LLM_HISTORY_LIMIT  # what its llm child needs
    await pipeline.aclose()


def test_the_routes_files_count_in_both_versions(tmp_path: Path) -> None:
    first = load_config(project(tmp_path))
    second = load_config(project(tmp_path, "Another prompt."))
    assert second.version != first.version

    def router_version(loaded: Any) -> str:
        fields = loaded.config.tenants["acme"].agents["support"].pipeline
        files = loaded.pipeline_files[("acme", "support")]
        built = pipeline_kind("router").build(fields, files, [LOOKUP_ORDER], "x")
        assert isinstance(built, RouterPipeline)
        return built.version

    assert router_version(first) == router_version(load_config(project(tmp_path)))
    assert router_version(second) != router_version(first)


def test_a_routes_file_error_names_the_route(tmp_path: Path) -> None:
    body = router(
        routes={
            "direct": {
                "kind": "llm",
                "model": "m",
                "base_url": "http://x/v1",
                "system_prompt_file": "missing.txt",
            }
        },
        default="direct",
    )
    problem = error_of(tmp_path, body)
    assert (
        "tenants.acme.agents.support.pipeline.routes.direct.system_prompt_file: no such file"
        in (problem)
    )


def test_a_routes_build_error_names_the_route(tmp_path: Path) -> None:
    llm = {
        "kind": "llm",
        "model": "m",
        "base_url": "http://x/v1",
        "enforcement": {"claims": {"refund_order": ["refunded"]}},
    }
    loaded = load_config(write(tmp_path, router(routes={"direct": llm}, default="direct")))
    with pytest.raises(ConfigError, match=r"pipeline\.routes\.direct\.enforcement\.claims: "):
        build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"default": "nope"}, "default: 'nope' is not one of the routes ['scripted']"),
        ({"fallback": "gone"}, "fallback: 'gone' is not one of the routes ['scripted']"),
        (
            {
                "rules": [
                    {"route": "scripted", "commands": ["/a"]},
                    {"route": "x", "keywords": ["k"]},
                ]
            },
            "rules[1].route: 'x' is not one of the routes ['scripted']",
        ),
        (
            {"rules": [{"route": "scripted"}]},
            "expected at least one of commands, keywords, regex and classify",
        ),
        (
            {"rules": [{"route": "scripted", "classify": "questions about orders"}]},
            "pipeline: Value error, classifier: rules[0].classify needs a route of kind llm to "
            "classify with, and there is none",
        ),
        (
            {"classifier": "scripted"},
            "classifier: 'scripted' is a route of kind rules, expected a route of kind llm []",
        ),
        ({"classifier": "gone"}, "classifier: 'gone' is not one of the routes ['scripted']"),
        (
            {"rules": [{"route": "scripted", "classify": " \n "}]},
            "pipeline.rules.0.classify: Value error, expected a description, not blank text",
        ),
        (
            {"rules": [{"route": "scripted", "classify": "x" * 501}]},
            "pipeline.rules.0.classify: String should have at most 500 characters",
        ),
        (
            {
                "routes": {
                    "none": {"kind": "rules", "rules": RULES},
                    "direct": {"kind": "llm", "model": "m", "base_url": "http://x/v1"},
                },
                "default": "direct",
                "rules": [{"route": "none", "classify": "anything"}],
            },
            "rules[0].route: a route named 'none' cannot be classified to",
        ),
        (
            {"classifier_timeout_s": 0},
            "pipeline.classifier_timeout_s: Input should be greater than 0",
        ),
        ({"rules": [{"route": "scripted", "commands": ["agent"]}]}, "pipeline.rules.0.commands.0"),
        ({"rules": [{"route": "scripted", "regex": "("}]}, "invalid regular expression"),
        ({"routes": {}}, "pipeline.routes: Dictionary should have at least 1 item"),
        ({"sticky_s": -1}, "pipeline.sticky_s: Input should be greater than or equal to 0"),
        ({"mystery": 1}, "pipeline.mystery: Extra inputs are not permitted"),
    ],
)
def test_invalid_routing_fields_are_named(
    tmp_path: Path, fields: dict[str, Any], problem: str
) -> None:
    assert problem in error_of(tmp_path, router(**fields))


def test_a_route_is_validated_as_its_kind(tmp_path: Path) -> None:
    problem = error_of(
        tmp_path,
        router(routes={"direct": {"kind": "llm", "base_url": "http://x/v1"}}, default="direct"),
    )
    assert "pipeline.routes.direct" in problem and "model: Field required" in problem
    problem = error_of(
        tmp_path, router(routes={"s": {"kind": "rules", "rules": {"rules": []}}}, default="s")
    )
    assert "pipeline.routes.s.rules: rules: expected at least one rule" in problem
    agent = {"kind": "agent_service", "base_url": "http://x/v1", "profile": "p"}
    problem = error_of(tmp_path, router(routes={"a": agent}, default="a"))
    assert "pipeline.routes.a" in problem and "expected the base URL without /v1" in problem


def test_a_router_cannot_route_to_a_router(tmp_path: Path) -> None:
    inner = {"kind": "router", "default": "s", "routes": {"s": {"kind": "rules", "rules": RULES}}}
    problem = error_of(tmp_path, router(routes={"inner": inner}, default="inner"))
    assert "pipeline.routes.inner: Input tag 'router' found using 'kind' does not match" in problem


def test_the_child_kinds_are_the_kinds_a_route_may_be() -> None:
    tags = set()
    for member in get_args(get_args(ChildPipelineFields)[0]):
        tags |= set(get_args(member.model_fields["kind"].annotation))
    assert tags == set(CHILD_KINDS)
    assert "router" not in tags
    assert RouterPipelineFields.model_fields["routes"].is_required()


def test_a_router_takes_the_largest_defaults_its_routes_need() -> None:
    assert largest_defaults(["rules", "llm", "python"]) == {"history_limit": LLM_HISTORY_LIMIT}
    assert largest_defaults(["rules", "python"]) == {}
    assert largest_defaults(["not-a-kind"]) == {}
    both = largest_defaults(["agent_service", "llm"])
    assert both == {"history_limit": LLM_HISTORY_LIMIT, "deadline_ms": AGENT_SERVICE_DEADLINE_MS}
    kind = KIND
    assert kind.settings_defaults == both  # every kind a route may be
    fields = RouterPipelineFields.model_validate(
        {"kind": "router", "default": "s", "routes": {"s": {"kind": "rules", "rules": RULES}}}
    )
    assert kind.settings_defaults_for(fields) == {}
    llm = {"kind": "llm", "model": "m", "base_url": "http://x/v1"}
    fields = fields.model_copy(
        update={"routes": {**fields.routes, "d": LlmPipelineFields.model_validate(llm)}}
    )
    assert kind.settings_defaults_for(fields) == {"history_limit": LLM_HISTORY_LIMIT}


LLM = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1"}


def classifying(**fields: Any) -> RouterPipelineFields:
    return RouterPipelineFields.model_validate(
        {
            "kind": "router",
            "default": "scripted",
            "routes": {
                "scripted": {"kind": "rules", "rules": RULES},
                "direct": LLM,
                "big": {**LLM, "model": "big"},
            },
            "rules": [
                {"route": "scripted", "commands": ["/rules"]},
                {"route": "big", "classify": "needs\n  a file   analysed"},
            ],
            **fields,
        }
    )


def test_a_classifying_rule_is_classified_by_the_first_llm_route_unless_one_is_named() -> None:
    fields = classifying()
    assert fields.rules[1].classify == "needs a file analysed"  # one line of the prompt
    assert fields.classifier_route == "direct"
    assert classifying(classifier="big").classifier_route == "big"
    unclassified = classifying(rules=[{"route": "big", "keywords": ["file"]}], classifier="big")
    assert unclassified.classifier_route is None  # no rule classifies: nothing is asked


def built(fields: RouterPipelineFields, base_dir: Path) -> RouterPipeline:
    pipeline = KIND.build(fields, KIND.load(fields, "x", base_dir).value, [], "x")
    assert isinstance(pipeline, RouterPipeline)
    return pipeline


async def test_the_classifier_asks_the_classifier_routes_own_model_client(
    tmp_path: Path,
) -> None:
    router = built(classifying(classifier="big"), tmp_path)
    big = router.children["big"]
    assert isinstance(big, LlmPipeline) and router.classifier is not None
    assert router.classifier.completer is big.setup.completer
    assert router.classifier.candidates == {"big": "needs a file analysed"}
    assert router.classifier.timeout_ms == 5000
    await router.aclose()
    assert built(classifying(rules=[]), tmp_path).classifier is None


def test_a_classifier_route_whose_pipeline_is_not_an_llm_agent_is_refused() -> None:
    fields = classifying()
    scripted = ScriptedPipeline(Script(reply="x"))
    children = {"scripted": scripted, "direct": scripted, "big": scripted}
    with pytest.raises(InvalidValue, match="classifier: the route 'direct' is not an llm"):
        RouterPipeline(fields, children, {})
