"""The configuration lifecycle's pure rules, table by table: when promote is gated, which
tenants a pushed file may name, which canary rollback raises the console's banner, how a
session's overrides are patched into its state, which upload paths are refused, how a
``ConfigError`` splits into field problems, and what ``acf config`` takes as a version."""

from typing import Any

import pytest
import typer
import yaml

from acf.config.load import ConfigError
from acf.domain.config_versions import ApplyMode, ConfigVersion, VersionStatus
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.state import merge_patch
from acf.entrypoints.cli.config_remote import parse_version
from acf.entrypoints.http.config_uploads import (
    check_named_paths,
    config_problems,
    named_paths,
    safe_relpath,
)
from acf.service.canary_status import is_automatic, unanswered_rollback
from acf.service.config_lifecycle import foreign_tenants, gate_passed, promote_refusal
from acf.service.config_overrides import overrides_patch, stored_overrides


def version(gates: dict[str, Any]) -> ConfigVersion:
    return ConfigVersion(
        tenant="acme",
        number=4,
        content_hash="sha256:0123456789abcdef",
        source={},
        resolved={},
        provenance={},
        author="ana",
        message="",
        git_commit=None,
        apply=ApplyMode.SESSION_CLOSE,
        status=VersionStatus.DRAFT,
        rolled_back=False,
        created_at_ms=0,
        updated_at_ms=0,
        gates=gates,
    )


PASSED = {"scenarios": {"passed": True, "at_ms": 1, "summary": {}}}
FAILED = {"scenarios": {"passed": False, "at_ms": 1, "summary": {}}}


@pytest.mark.parametrize(
    ("gates", "force", "passed", "refusal"),
    [
        ({}, False, None, "v4 has no passed scenarios gate"),
        ({}, True, None, None),
        (PASSED, False, True, None),
        (PASSED, True, True, None),
        (FAILED, False, False, "v4 failed its scenarios gate"),
        (FAILED, True, False, None),
        ({"preview": {"passed": True}}, False, None, "no passed scenarios gate"),
        ({"scenarios": "yes"}, False, None, "no passed scenarios gate"),
    ],
)
def test_promote_is_gated_by_the_scenarios_suite(
    gates: dict[str, Any], force: bool, passed: bool | None, refusal: str | None
) -> None:
    assert gate_passed(version(gates)) is passed
    said = promote_refusal(version(gates), force)
    if refusal is None:
        assert said is None
    else:
        assert said is not None and refusal in said
        assert "acf scenarios run PATH --tenant acme --version 4" in said
        canary = promote_refusal(version(gates), force, "start the canary")
        assert canary is not None and "or start the canary with force" in canary


@pytest.mark.parametrize(
    ("named", "refused"),
    [
        (["acme"], None),
        (["globex"], "'globex'"),
        (["acme", "globex"], "'globex'"),
        ([], "does not name tenant 'acme'"),
    ],
)
def test_a_file_may_name_only_the_callers_tenant(named: list[str], refused: str | None) -> None:
    said = foreign_tenants("acme", named)
    assert said is None if refused is None else (said is not None and refused in said)


def event(kind: EventKind, **data: Any) -> FabricEvent:
    return FabricEvent(kind, 1, Correlation("acme", "t"), data)


ROLLED = event(EventKind.CONFIG_CANARY_ROLLED_BACK, actor="canary watch", reason="r")
STARTED = event(EventKind.CONFIG_CANARY_STARTED, actor="key k1 (ci)")
PROMOTED = event(EventKind.CONFIG_PROMOTED, actor="key k1 (ci)")
ADVANCED = event(EventKind.CONFIG_CANARY_ADVANCED, reason="baked")


@pytest.mark.parametrize(
    ("newest_first", "banner"),
    [
        ([], None),
        ([ROLLED], ROLLED),
        ([ROLLED, STARTED], ROLLED),
        ([STARTED, ROLLED], None),  # a canary started since: moved on
        ([PROMOTED, ROLLED], None),
        ([ADVANCED, ROLLED], ROLLED),
    ],
)
def test_the_banner_shows_the_rollback_nobody_moved_on_from(
    newest_first: list[FabricEvent], banner: FabricEvent | None
) -> None:
    assert unanswered_rollback(newest_first) is banner


@pytest.mark.parametrize(
    ("data", "automatic"),
    [
        ({"actor": "canary watch"}, True),
        ({"actor": "key k1 (release)"}, False),
        ({"actor": "cli ana"}, False),
        ({}, True),
        ({"actor": "key k1", "automatic": True}, True),
    ],
)
def test_automatic_means_not_a_key(data: dict[str, Any], automatic: bool) -> None:
    assert is_automatic(event(EventKind.CONFIG_CANARY_ROLLED_BACK, **data)) is automatic


@pytest.mark.parametrize(
    ("before", "new", "after"),
    [
        ({}, {"settings.deadline_ms": 5}, {"settings.deadline_ms": 5}),
        (
            {"settings.deadline_ms": 5},
            {"settings.fallback_text": "x"},
            {"settings.fallback_text": "x"},
        ),
        ({"settings.deadline_ms": 5}, {}, None),
        (
            {"channels.web": {"window_ms": 1, "mode": "adaptive"}},
            {"channels.web": {"window_ms": 2}},
            {"channels.web": {"window_ms": 2}},
        ),
    ],
)
def test_overrides_replace_the_previous_ones(
    before: dict[str, Any], new: dict[str, Any], after: dict[str, Any] | None
) -> None:
    state = {"data": {"other": 1}, **({"config_overrides": before} if before else {})}
    patched = merge_patch(state, overrides_patch(stored_overrides(state), new))
    assert stored_overrides(patched) == after
    assert patched["data"] == {"other": 1}


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("rules.yaml", None),
        ("prompts/support v2.md", None),
        ("bases/support.yaml", None),
        ("../escape.yaml", "inside the upload"),
        ("/etc/passwd", "inside the upload"),
        ("a/../../b", "inside the upload"),
        ("C:/x.yaml", "inside the upload"),
        ("..\\x.yaml", "inside the upload"),
        (".env", "inside the upload"),
        ("a\x00b", "inside the upload"),
        ("", "inside the upload"),
        ("agent.py", "code is not uploaded"),
        ("lib/x.so", "code is not uploaded"),
        ("site.pth", "code is not uploaded"),
    ],
)
def test_upload_paths(name: str, refused: str | None) -> None:
    if refused is None:
        safe_relpath(name)
        return
    with pytest.raises(ConfigError, match=refused):
        safe_relpath(name)


def test_paths_the_yaml_names_stay_inside_the_upload() -> None:
    body = {
        "bases": {"support": "bases/support.yaml"},
        "tenants": {"a": {"agents": {"s": {"pipeline": {"rules_file": "r.yaml"}}}}},
    }
    assert sorted(named_paths(body)) == [
        ("bases.support", "bases/support.yaml"),
        ("tenants.a.agents.s.pipeline.rules_file", "r.yaml"),
    ]
    check_named_paths("tenants: {a: {agents: {s: {pipeline: {rules_file: r.yaml}}}}}")
    with pytest.raises(ConfigError, match=r"tenants\.a\.agents\.s\.pipeline\.system_prompt_file"):
        check_named_paths("tenants: {a: {agents: {s: {pipeline: {system_prompt_file: /x}}}}}")
    with pytest.raises(ConfigError, match=r"bases\.b"):
        check_named_paths("bases: {b: ../b.yaml}")


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"settings.deadline_ms": 5, "settings.deadline_ms.x": 1}, "settings.deadline_ms.x"),
        ({"settings.deadline_ms.x": 1, "settings.deadline_ms": 5}, "settings.deadline_ms.x"),
        ({"settings": 1, "settings.deadline_ms": 5}, "settings.deadline_ms"),
        ({"settings.deadline_ms": 5, "settings.fallback_text": "x"}, None),
    ],
)
def test_nesting_overrides_refuses_a_value_with_keys_inside(
    overrides: dict[str, Any], refused: str | None
) -> None:
    from acf.config.layers import _nest

    if refused is None:
        assert _nest(overrides) == {"settings": {"deadline_ms": 5, "fallback_text": "x"}}
        return
    with pytest.raises(ConfigError, match=refused):
        _nest(overrides)


@pytest.mark.parametrize(
    ("message", "problems"),
    [
        (
            "acf.yaml: tenants.acme.settings.deadline_ms: Input should be greater than 0; "
            "tenants.acme.tools: Field required",
            [
                ("tenants.acme.settings.deadline_ms", "Input should be greater than 0"),
                ("tenants.acme.tools", "Field required"),
            ],
        ),
        ("acf.yaml (line 1, column 9): invalid YAML: oops", [("acf.yaml", "invalid YAML: oops")]),
        ("no source at all", [("", "no source at all")]),
    ],
)
def test_a_config_error_splits_into_field_problems(
    message: str, problems: list[tuple[str, str]]
) -> None:
    assert [(p.path, p.message) for p in config_problems(message)] == problems


@pytest.mark.parametrize(("text", "number"), [("3", 3), ("v3", 3), ("V3", 3), (" v12 ", 12)])
def test_versions_on_the_command_line(text: str, number: int) -> None:
    assert parse_version(text) == number


@pytest.mark.parametrize("text", ["0", "v", "three", "-1", "v0", "vv3", "x3"])
def test_not_versions(text: str) -> None:
    with pytest.raises(typer.Exit):
        parse_version(text)


def test_push_writes_yaml_aliases_out() -> None:
    from acf.entrypoints.cli.config_upload import without_aliases

    text = "a: &x {k: 1}\nb: *x\n"
    out = without_aliases(text)
    assert "*" not in out and "&" not in out
    assert yaml.safe_load(out) == yaml.safe_load(text)
    assert without_aliases("plain: 1\n") == "plain: 1\n"
