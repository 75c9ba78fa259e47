"""Layers of the configuration file (DESIGN §17): a key set at each layer explained with
its provenance, overlays over base agents (narrowing, conflicts, refusal when they no
longer fit), scenario steps, and a tenant's version source round trip (files embedded,
hash stable, changing with a rules file)."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.config.errors import ConfigError
from acf.config.layers import conflicts, explain, provenance, step_fields, step_files
from acf.config.load import load_config
from acf.config.versions_source import content_hash, load_version, version_sources
from acf.entrypoints.cli.serve import demo_config_path

BASE = {
    "pipeline": {
        "kind": "llm",
        "model": "m1",
        "base_url": "http://127.0.0.1:9/v1",
        "system_prompt_file": "prompts/support.txt",
        "temperature": 0.6,
    },
    "tools": ["lookup_order", "refund"],
    "settings": {"deadline_ms": 30000},
    "scenarios": {"refund": {"steps": {"collect": {"pipeline": {"model": "m2"}}}}},
}
RULES = {"rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hello"}]}


def config(agent: dict[str, Any] | None = None) -> dict[str, Any]:
    support = {
        "base": "support",
        "tools": ["lookup_order"],
        "pipeline": {"temperature": 0.2},
        "overridable": ["settings.deadline_ms"],
        "scenarios": {
            "refund": {
                "settings": {"supersede": "queue"},
                "steps": {"collect": {"channels": {"web": {"window_ms": 1200}}}},
            }
        },
    }
    return {
        "version": 1,
        "bases": {"support": "bases/support.yaml"},
        "tenants": {
            "demo": {
                "agent_defaults": {"settings": {"fallback_text": "Sorry."}},
                "tools": [
                    {"name": "lookup_order", "builtin": "commerce"},
                    {"name": "refund", "builtin": "commerce"},
                ],
                "agents": {
                    "support": support if agent is None else agent,
                    "desk": {"pipeline": {"kind": "rules", "rules_file": "rules.yaml"}},
                },
            },
            "other": {"agents": {"a": {"pipeline": {"kind": "rules", "rules": RULES}}}},
        },
    }


def write(folder: Path, body: dict[str, Any], base: dict[str, Any] | None = None) -> Path:
    (folder / "bases").mkdir(exist_ok=True)
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "bases" / "support.yaml").write_text(yaml.safe_dump(base or BASE), "utf-8")
    (folder / "prompts" / "support.txt").write_text("You help {tenant}.", "utf-8")
    if not (folder / "rules.yaml").exists():
        (folder / "rules.yaml").write_text(yaml.safe_dump(RULES), "utf-8")
    path = folder / "acf.yaml"
    path.write_text(yaml.safe_dump(body), "utf-8")
    return path


AGENT = "acf.yaml: tenants.demo.agents.support"


@pytest.mark.parametrize(
    ("key", "value", "layer", "source"),
    [
        ("settings.max_attempts", 3, "default", "acf"),
        ("settings.history_limit", 200, "default", "acf: the llm kind"),
        ("channels.web.window_ms", 600, "default", "acf"),
        ("pipeline.model", "m1", "base", "bases/support.yaml"),
        ("settings.deadline_ms", 30000, "base", "bases/support.yaml"),
        ("settings.fallback_text", "Sorry.", "tenant", "acf.yaml: tenants.demo.agent_defaults"),
        ("pipeline.temperature", 0.2, "agent", AGENT),
        ("tools", ["lookup_order"], "agent", AGENT),
    ],
)
def test_explain_names_the_layer_of_each_value(
    tmp_path: Path, key: str, value: object, layer: str, source: str
) -> None:
    loaded = load_config(write(tmp_path, config()))
    [row] = explain(loaded, "demo", "support", key)
    assert (row.key, row.value, row.layer, row.source) == (key, value, layer, source)
    assert provenance(loaded, "demo")[f"agents.support.{key}"] == {
        "layer": layer,
        "source": source,
        "value": value,
    }


@pytest.mark.parametrize(
    ("key", "value", "layer", "source"),
    [
        ("settings.supersede", "queue", "scenario", f"{AGENT}.scenarios.refund"),
        ("pipeline.model", "m2", "step", "bases/support.yaml: scenarios.refund.steps.collect"),
        ("channels.web.window_ms", 1200, "step", f"{AGENT}.scenarios.refund.steps.collect"),
        ("pipeline.temperature", 0.2, "agent", AGENT),
        ("settings.deadline_ms", 5000, "override", "runtime override"),
    ],
)
def test_explain_down_to_a_step_and_a_runtime_override(
    tmp_path: Path, key: str, value: object, layer: str, source: str
) -> None:
    loaded = load_config(write(tmp_path, config()))
    [row] = explain(
        loaded,
        "demo",
        "support",
        key,
        scenario="refund",
        step="collect",
        overrides={"settings.deadline_ms": 5000},
    )
    assert (row.value, row.layer, row.source) == (value, layer, source)


def test_step_fields_resolve_the_agent_down_to_the_step(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, config()))
    fields = step_fields(loaded, "demo", "support", "refund", "collect")
    assert (fields.pipeline.model, fields.tools, fields.settings.supersede) == (
        "m2",
        ["lookup_order"],
        "queue",
    )
    assert fields.scenarios == {}
    assert (
        step_files(loaded, "demo", "support", "refund", None)
        is loaded.pipeline_files[("demo", "support")]
    )
    with pytest.raises(ConfigError, match="no step 'pay'"):
        step_fields(loaded, "demo", "support", "refund", "pay")


def test_conflicts_between_base_and_overlay_are_listed(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, config()))
    assert sorted(c.key for c in conflicts(loaded, "demo", "support")) == [
        "pipeline.temperature",
        "tools",
    ]


@pytest.mark.parametrize(
    ("agent", "error"),
    [
        (
            {"base": "support", "pipeline": {"modle": "x", "temperature": 9}},
            "acf.yaml: tenants.demo.agents.support: the overlay is incompatible with base "
            "support (bases/support.yaml): pipeline.modle, pipeline.temperature (",
        ),
        (
            {"base": "support", "tools": ["lookup_order", "cancel"]},
            "tools ['cancel'] are not allowed by the base layer below (bases/support.yaml)",
        ),
        (
            {"base": "nope"},
            "tenants.demo.agents.support.base: 'nope' is not one of the bases ['support']",
        ),
        (
            {"base": "support", "scenarios": {"s": {"steps": {"x": {"tools": ["wipe"]}}}}},
            "tools ['wipe'] are not allowed by the base layer",
        ),
    ],
)
def test_overlays_that_do_not_fit_are_refused_naming_the_keys(
    tmp_path: Path, agent: dict[str, Any], error: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, config(agent)))
    assert error in str(info.value)


@pytest.mark.parametrize(
    ("overlay", "error"),
    [
        (
            {"tools": ["lookup_order", "refund"]},
            "scenarios.refund: tools ['refund'] are not allowed by the base layer below "
            "(bases/support.yaml), which allows ['lookup_order']",
        ),
        (
            {"steps": {"collect": {"tools": ["lookup_order", "refund"]}}},
            "scenarios.refund.steps.collect: tools ['refund'] are not allowed by the base layer",
        ),
    ],
)
def test_an_overlay_cannot_widen_a_base_scenarios_allowlist(
    tmp_path: Path, overlay: dict[str, Any], error: str
) -> None:
    refund = {"tools": ["lookup_order"], "steps": {"collect": {"tools": ["lookup_order"]}}}
    base = {**BASE, "scenarios": {"refund": refund}}
    agent = {"base": "support", "scenarios": {"refund": overlay}}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, config(agent), base))
    assert error in str(info.value)
    # narrowing it is fine, and the step resolves to the narrower list
    narrow = {"base": "support", "scenarios": {"refund": {"steps": {"collect": {"tools": []}}}}}
    loaded = load_config(write(tmp_path, config(narrow), base))
    assert step_fields(loaded, "demo", "support", "refund", "collect").tools == []


def test_a_base_that_changed_under_its_overlay_is_refused(tmp_path: Path) -> None:
    # the base moves to a rules pipeline: the overlay's LLM temperature no longer fits
    base = {**BASE, "pipeline": {"kind": "rules", "rules_file": "rules.yaml"}, "scenarios": {}}
    with pytest.raises(ConfigError, match=r"incompatible with base support.*pipeline\.temperature"):
        load_config(write(tmp_path, config(), base))


def test_the_version_source_round_trips_with_its_files(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, config()))
    sources = version_sources(loaded)
    demo = sources["demo"]
    assert set(sources) == {"demo", "other"}
    assert demo.source["files"] == {
        "prompts/support.txt": "You help {tenant}.",
        "rules.yaml": yaml.safe_dump(RULES),
    }
    assert demo.source["bases"] == {"support": {"path": "bases/support.yaml", "body": BASE}}
    assert sources["other"].source["bases"] == {} and sources["other"].source["files"] == {}
    assert demo.content_hash == content_hash(demo.source)
    assert demo.resolved == loaded.config.tenants["demo"].model_dump(mode="json")
    assert demo.apply == "session_close"

    again = load_version(demo.source, tmp_path / "versions")
    assert again.version == demo.content_hash
    assert set(again.config.tenants) == {"demo"}
    assert again.config.tenants["demo"] == loaded.config.tenants["demo"]
    assert version_sources(again)["demo"].source == demo.source
    assert version_sources(again)["demo"].provenance == demo.provenance
    # loading it twice (another process) writes the same files
    assert load_version(demo.source, tmp_path / "versions").config == again.config


def test_the_hash_is_stable_and_changes_with_a_rules_file(tmp_path: Path) -> None:
    path = write(tmp_path, config())
    first = version_sources(load_config(path))
    assert version_sources(load_config(path))["demo"].content_hash == first["demo"].content_hash
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({**RULES, "fallback": "?"}), "utf-8")
    changed = version_sources(load_config(path))
    assert changed["demo"].content_hash != first["demo"].content_hash
    assert changed["other"].content_hash == first["other"].content_hash  # per tenant


def test_secrets_stay_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_KEY", "s3cret-value")
    body = config()
    body["tenants"]["demo"]["agents"]["support"]["pipeline"]["api_key"] = "${MODEL_KEY}"
    demo = version_sources(load_config(write(tmp_path, body)))["demo"]
    text = str([demo.source, demo.resolved, demo.provenance])
    assert "${MODEL_KEY}" in text and "s3cret-value" not in text


def test_git_commit_when_the_file_is_in_a_work_tree(tmp_path: Path) -> None:
    path = write(tmp_path, config())
    assert version_sources(load_config(path))["demo"].git_commit is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "config"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert version_sources(load_config(path))["demo"].git_commit == head.strip()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda s: s["files"].pop("rules.yaml"), "names files it does not embed: ['rules.yaml']"),
        (lambda s: s.update(format=2), "format 2"),
        (lambda s: s.update(file="../acf.yaml"), "not a plain file name"),
        (
            lambda s: s["body"]["agents"]["desk"]["pipeline"].update(rules_file="/etc/hosts"),
            "names files it does not embed: ['/etc/hosts']",
        ),
    ],
)
def test_load_version_refuses_a_bad_source(tmp_path: Path, change: Any, error: str) -> None:
    source = version_sources(load_config(write(tmp_path, config())))["demo"].source
    source = yaml.safe_load(yaml.safe_dump(source))  # a copy
    change(source)
    with pytest.raises(ConfigError, match=re.escape(error)):
        load_version(source, tmp_path / "versions")


def test_a_file_above_the_configuration_stays_inside_the_version_folder(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "rules.yaml").write_text(yaml.safe_dump(RULES), "utf-8")
    folder = tmp_path / "conf"
    folder.mkdir()
    body = config()
    body["tenants"]["demo"]["agents"]["desk"]["pipeline"]["rules_file"] = "../shared/rules.yaml"
    demo = version_sources(load_config(write(folder, body)))["demo"]
    work = tmp_path / "versions"
    again = load_version(demo.source, work)
    assert again.config.tenants["demo"] == load_config(folder / "acf.yaml").config.tenants["demo"]
    assert all(work in p.parents for p in work.rglob("*"))


def test_the_demo_configuration_round_trips(tmp_path: Path) -> None:
    loaded = load_config(demo_config_path())
    for tenant, source in version_sources(loaded).items():
        again = load_version(source.source, tmp_path)
        assert again.config.tenants[tenant] == loaded.config.tenants[tenant]
        assert again.version == source.content_hash
