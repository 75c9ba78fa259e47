"""The merge of configuration layers (acf.config.merge), the diff of resolved
configurations, state upcasters and runtime overrides: table tests, no files."""

import re
from typing import Any

import pytest
from pydantic import ValidationError

from acf.config.diff import DiffRow, diff_resolved
from acf.config.errors import ConfigError
from acf.config.layers import override_fields
from acf.config.lifecycle import CanaryFields, StateUpcaster
from acf.config.merge import Layer, Origin, flatten, merge_layers
from acf.config.model import AgentFields

BASE = Layer(
    "base",
    "bases/support.yaml",
    {
        "pipeline": {"kind": "llm", "model": "m1", "base_url": "http://x/v1", "temperature": 0.6},
        "tools": ["lookup_order", "refund"],
        "settings": {"deadline_ms": 30000},
    },
)


def layer(name: str, body: dict[str, Any]) -> Layer:
    return Layer(name, f"acf.yaml: {name}", body)


@pytest.mark.parametrize(
    ("layers", "key", "expected"),
    [
        ([BASE], "pipeline.model", Origin("base", "bases/support.yaml", "m1")),
        (
            [BASE, layer("tenant", {"settings": {"deadline_ms": 5}})],
            "settings.deadline_ms",
            Origin("tenant", "acf.yaml: tenant", 5),
        ),
        (
            [BASE, layer("agent", {"pipeline": {"temperature": 0.2}})],
            "pipeline.temperature",
            Origin("agent", "acf.yaml: agent", 0.2),
        ),
        (  # the key below stays with the layer that set it
            [BASE, layer("agent", {"pipeline": {"temperature": 0.2}})],
            "pipeline.model",
            Origin("base", "bases/support.yaml", "m1"),
        ),
        (
            [BASE, layer("scenario", {"settings": {"supersede": "queue"}})],
            "settings.supersede",
            Origin("scenario", "acf.yaml: scenario", "queue"),
        ),
        (  # lists are replaced whole
            [BASE, layer("step", {"tools": ["lookup_order"]})],
            "tools",
            Origin("step", "acf.yaml: step", ["lookup_order"]),
        ),
    ],
)
def test_each_value_records_the_layer_that_set_it(
    layers: list[Layer], key: str, expected: Origin
) -> None:
    assert merge_layers(layers).log[key] == expected


def test_mappings_merge_key_by_key_and_the_more_specific_layer_wins() -> None:
    merged = merge_layers(
        [
            BASE,
            layer("tenant", {"settings": {"fallback_text": "Sorry."}}),
            layer("agent", {"settings": {"deadline_ms": 9}}),
        ]
    )
    assert merged.body["settings"] == {"deadline_ms": 9, "fallback_text": "Sorry."}
    assert merged.body["pipeline"]["model"] == "m1"


def test_a_pipeline_of_another_kind_replaces_the_one_below_whole() -> None:
    rules = {"kind": "rules", "rules_file": "r.yaml"}
    merged = merge_layers([BASE, layer("agent", {"pipeline": rules})])
    assert merged.body["pipeline"] == rules
    assert "pipeline.model" not in merged.log
    assert [c.key for c in merged.conflicts] == ["pipeline"]


def test_conflicts_list_values_a_later_layer_sets_differently() -> None:
    merged = merge_layers([BASE, layer("agent", {"pipeline": {"temperature": 0.2, "model": "m1"}})])
    assert [(c.key, c.below.value, c.above.value) for c in merged.conflicts] == [
        ("pipeline.temperature", 0.6, 0.2)
    ]  # the same value set again is no conflict
    assert "agent (acf.yaml: agent) sets 0.2; agent wins" in str(merged.conflicts[0])


@pytest.mark.parametrize(
    ("tools", "error"),
    [
        (["lookup_order"], None),
        ([], None),
        (["lookup_order", "cancel"], "tools ['cancel'] are not allowed by the base layer"),
        (["delete_all", "wipe"], "tools ['delete_all', 'wipe'] are not allowed"),
    ],
)
def test_tool_allowlists_only_narrow(tools: list[str], error: str | None) -> None:
    layers = [BASE, layer("agent", {"tools": tools})]
    if error is None:
        assert merge_layers(layers).body["tools"] == tools
        return
    with pytest.raises(ConfigError, match=re.escape(error)):
        merge_layers(layers)


def test_narrowing_is_checked_against_the_nearest_layer_that_set_tools() -> None:
    layers = [
        BASE,
        layer("agent", {"tools": ["lookup_order"]}),
        layer("step", {"tools": ["refund"]}),
    ]
    with pytest.raises(ConfigError, match=r"acf.yaml: step: tools \['refund'\].*agent layer"):
        merge_layers(layers)


SCENARIO_BASE = Layer(
    "base",
    "bases/support.yaml",
    {
        "tools": ["lookup_order", "refund"],
        "scenarios": {
            "refund": {
                "tools": ["lookup_order"],
                "steps": {"collect": {"tools": ["lookup_order"]}, "pay": {}},
            }
        },
    },
)


@pytest.mark.parametrize(
    ("overlay", "error"),
    [
        ({"scenarios": {"refund": {"tools": ["lookup_order"]}}}, None),
        ({"scenarios": {"refund": {"tools": []}}}, None),
        ({"scenarios": {"refund": {"steps": {"collect": {"tools": []}}}}}, None),
        # a key the base did not set is checked later, against the agent's allowlist
        ({"scenarios": {"refund": {"steps": {"pay": {"tools": ["refund"]}}}}}, None),
        ({"scenarios": {"other": {"tools": ["refund"]}}}, None),
        (
            {"scenarios": {"refund": {"tools": ["lookup_order", "refund"]}}},
            "acf.yaml: agent: scenarios.refund: tools ['refund'] are not allowed by the base "
            "layer below (bases/support.yaml), which allows ['lookup_order']",
        ),
        (
            {"scenarios": {"refund": {"steps": {"collect": {"tools": ["refund", "wipe"]}}}}},
            "acf.yaml: agent: scenarios.refund.steps.collect: tools ['refund', 'wipe'] are not "
            "allowed by the base layer below",
        ),
    ],
)
def test_scenario_and_step_allowlists_only_narrow_the_same_key_below(
    overlay: dict[str, Any], error: str | None
) -> None:
    layers = [SCENARIO_BASE, layer("agent", overlay)]
    if error is None:
        merge_layers(layers)
        return
    with pytest.raises(ConfigError, match=re.escape(error)):
        merge_layers(layers)


def test_flatten_walks_mappings_and_keeps_lists_and_empty_mappings_as_leaves() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2], "d": {}}}) == {"a.b": 1, "a.c": [1, 2], "a.d": {}}


@pytest.mark.parametrize(
    ("a", "b", "rows"),
    [
        ({"x": 1}, {"x": 1}, []),
        ({"x": 1}, {"x": 2}, [DiffRow("x", 1, 2, "changed")]),
        ({}, {"s": {"d": 5}}, [DiffRow("s.d", None, 5, "added")]),
        (
            {"s": {"d": 5}},
            {"s": {}},
            [DiffRow("s", None, {}, "added"), DiffRow("s.d", 5, None, "removed")],
        ),
        ({"t": ["a", "b"]}, {"t": ["a"]}, [DiffRow("t", ["a", "b"], ["a"], "changed")]),
        ({"f": True}, {"f": 1}, [DiffRow("f", True, 1, "changed")]),
    ],
)
def test_diff_resolved_per_dotted_key(
    a: dict[str, Any], b: dict[str, Any], rows: list[DiffRow]
) -> None:
    assert diff_resolved(a, b) == rows


@pytest.mark.parametrize(
    ("upcaster", "state", "expected"),
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"rename": {"cart": "basket"}}, {"cart": [1], "x": 2}, {"basket": [1], "x": 2}),
        ({"rename": {"cart": "basket"}}, {"x": 2}, {"x": 2}),
        ({"drop": ["legacy"]}, {"legacy": 1, "x": 2}, {"x": 2}),
        ({"set": {"schema": 2}}, {"schema": 1}, {"schema": 2}),
        (
            {"rename": {"a": "b"}, "drop": ["b"], "set": {"b": 0}},
            {"a": 1},
            {"b": 0},
        ),  # rename, then drop, then set
    ],
)
def test_state_upcaster(
    upcaster: dict[str, Any], state: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = dict(state)
    assert StateUpcaster.model_validate(upcaster).upcast(state) == expected
    assert state == before


def test_canary_defaults_and_checks() -> None:
    policy = CanaryFields().policy()
    assert (policy.failure_margin, policy.min_turns, policy.steps) == (0.02, 50, (10, 25, 50, 100))
    assert CanaryFields().check_every_s == 30
    for bad in (
        {"steps": [50, 25]},
        {"steps": [0, 10]},
        {"failure_margin": 2},
        {"check_every_s": 120},
    ):
        with pytest.raises(ValidationError):
            CanaryFields.model_validate(bad)


AGENT = AgentFields.model_validate(
    {
        "pipeline": {"kind": "llm", "model": "m1", "base_url": "http://x/v1"},
        "tools": ["lookup_order", "refund"],
        "settings": {"deadline_ms": 30000},
        "overridable": ["settings.deadline_ms", "pipeline.temperature", "tools"],
    }
)


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"settings.deadline_ms": 5000}, lambda f: f.settings.deadline_ms == 5000),
        ({"settings": {"deadline_ms": 7000}}, lambda f: f.settings.deadline_ms == 7000),
        (
            {"pipeline.temperature": 0.1},
            lambda f: f.pipeline.temperature == 0.1 and f.pipeline.model == "m1",
        ),
        ({"tools": ["refund"]}, lambda f: f.tools == ["refund"]),
        ({}, lambda f: f is AGENT),
    ],
)
def test_runtime_overrides_of_overridable_keys(overrides: dict[str, Any], check: Any) -> None:
    assert check(override_fields(AGENT, AGENT.overridable, overrides))


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"settings.fallback_text": "x"}, "settings.fallback_text not overridable"),
        ({"pipeline": {"model": "m2"}}, "pipeline.model not overridable"),
        ({"settings.deadline_ms": 0}, "settings.deadline_ms: Input should be greater than 0"),
        ({"tools": ["cancel"]}, r"tools \['cancel'\] are not in the agent's allowlist"),
    ],
)
def test_runtime_overrides_refused(overrides: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        override_fields(AGENT, AGENT.overridable, overrides)


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("settings.deadlin_ms", "is not a setting"),
        ("pipeline.system_prompt_file", "kind or file"),
        ("pipeline.nope", "is not a field of this agent's llm pipeline"),
        ("pipeline", "whole pipeline"),
        ("channels.fax", "names no channel"),
        ("scenarios", "not a key a runtime override may set"),
        ("pipeline.base_url", "code, an endpoint or a credential"),  # a session's key
        # must never redirect the model's requests, or send its credential elsewhere
    ],
)
def test_overridable_keys_must_exist(key: str, error: str) -> None:
    body = AGENT.model_dump(mode="json", exclude_unset=True) | {"overridable": [key]}
    with pytest.raises(ValidationError, match=error):
        AgentFields.model_validate(body)
