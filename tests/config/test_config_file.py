"""The configuration file: validation errors name the file, the field path and what was
expected; layers of channel policies; agents built from it; `acf config validate`."""

from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from acf.bootstrap import ToolBackends, build_agents, channel_policy
from acf.config.load import ConfigError, load_config
from acf.config.model import ChannelPolicyFields
from acf.demo import demo_tools
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.entrypoints.cli import app
from acf.entrypoints.cli.serve import demo_config_path

RULES = {
    "fallback": "?",
    "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hello"}],
}


def base() -> dict:
    return {
        "version": 1,
        "tenants": {
            "acme": {
                "tools": [{"name": "lookup_order", "builtin": "commerce"}],
                "agents": {
                    "support": {
                        "pipeline": {"kind": "rules", "rules": RULES},
                        "tools": ["lookup_order"],
                    }
                },
            }
        },
    }


def write(tmp_path: Path, body: object, name: str = "acf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body) if not isinstance(body, str) else body, "utf-8")
    return path


def error_of(tmp_path: Path, body: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body))
    return str(info.value)


def test_the_bundled_demo_configuration_is_valid() -> None:
    loaded = load_config(demo_config_path())
    agents = build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))
    binding = agents.get("demo", "support")
    assert binding.tools.names() == [
        "cancel_subscription",
        "create_ticket",
        "lookup_order",
        "refund_order",
    ]
    assert loaded.version.startswith("sha256:")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda b: b["tenants"]["acme"]["agents"]["support"].update(settings={"deadline_ms": 0}),
            "tenants.acme.agents.support.settings.deadline_ms: Input should be greater than 0",
        ),
        (
            lambda b: b["tenants"]["acme"]["agents"]["support"].update(colour="red"),
            "tenants.acme.agents.support.colour: Extra inputs are not permitted",
        ),
        (
            lambda b: b["tenants"]["acme"]["agents"]["support"].update(tools=["refund"]),
            "agent 'support' allows tools ['refund'] that the tenant does not declare",
        ),
        (
            lambda b: b["tenants"]["acme"].update(limits={"accepted_messages": "lots"}),
            'limits.accepted_messages: Value error, expected one rate such as "20/second"',
        ),
        (
            lambda b: b["tenants"]["acme"]["agents"]["support"]["pipeline"].update(
                kind="langgraph"
            ),
            "agents.support.pipeline: Input tag 'langgraph' found using 'kind' does not match",
        ),
        (
            lambda b: b["tenants"]["acme"]["tools"].append(
                {
                    "name": "pay",
                    "policy": "irreversible",
                    "http": {
                        "method": "POST",
                        "url": "https://x",
                        "headers": {"Authorization": "abc"},
                    },
                }
            ),
            "tools.1.http.headers: Value error, header Authorization must reference a secret",
        ),
        (
            lambda b: (
                b["tenants"]["acme"]["channels"].__setitem__("fax", {"mode": "off"})
                if "channels" in b["tenants"]["acme"]
                else b["tenants"]["acme"].update(channels={"fax": {"mode": "off"}})
            ),
            "tenants.acme.channels.fax.[key]: Input should be 'whatsapp', 'sms', 'web'",
        ),
        (lambda b: b.update(tenants={}), "tenants: Dictionary should have at least 1 item"),
    ],
)
def test_errors_name_the_file_the_field_and_what_was_expected(
    tmp_path: Path, mutate: object, expected: str
) -> None:
    body = base()
    mutate(body)  # type: ignore[operator]
    message = error_of(tmp_path, body)
    assert message.startswith(str(tmp_path / "acf.yaml")), message
    assert expected in message, message


def test_yaml_syntax_errors_say_where(tmp_path: Path) -> None:
    message = error_of(tmp_path, "version: 1\ntenants: [unclosed\n")
    assert "acf.yaml (line 3, column 1): invalid YAML" in message


EMAIL_HEAD = "version: 1\ntenants:\n  acme:\n    email:\n      inbound:\n"


@pytest.mark.parametrize(
    ("line", "quoted"),
    [
        ("        mailgun: {signing_key: ${MAILGUN_SIGNING_KEY}}", '"${MAILGUN_SIGNING_KEY}"'),
        ("        mailgun: {a: b, signing_key: ${KEY_2}}", '"${KEY_2}"'),
        ("        headers: {Authorization: Bearer ${TOKEN}}", '"Bearer ${TOKEN}"'),
        ("        list: [${FIRST}]", '"${FIRST}"'),
    ],
)
def test_an_unquoted_reference_in_braces_is_reported_with_how_to_quote_it(
    tmp_path: Path, line: str, quoted: str
) -> None:
    message = error_of(tmp_path, EMAIL_HEAD + line + "\n")
    column = line.index("${") + 1  # where the reference starts, on the file's 6th line
    assert f"acf.yaml (line 6, column {column}): invalid YAML: the secret reference" in message
    assert f"quote the value: {quoted}" in message, message


def test_a_quoted_reference_in_braces_is_fine_and_other_yaml_errors_keep_their_text(
    tmp_path: Path,
) -> None:
    quoted = EMAIL_HEAD + '        mailgun: {signing_key: "${MAILGUN_SIGNING_KEY}"}\n'
    assert "secret reference" not in error_of(tmp_path, quoted)  # valid YAML, other errors
    message = error_of(tmp_path, "version: 1\ntenants: {acme: {x: {y}}\n")
    assert "invalid YAML: expected ',' or '}'" in message and "secret reference" not in message


def test_rules_files_are_resolved_beside_the_config_and_checked(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = {
        "kind": "rules",
        "rules_file": "rules.yaml",
    }
    message = error_of(tmp_path, body)
    assert "pipeline.rules_file: no such file" in message and "rules.yaml" in message
    write(tmp_path, {"rules": [{"name": "x", "lane": "a", "match": {"regex": "("}}]}, "rules.yaml")
    message = error_of(tmp_path, body)
    assert "rules.yaml" in message and "rules.0.match" in message
    write(tmp_path, RULES, "rules.yaml")
    assert (
        load_config(write(tmp_path, body)).pipeline_files[("acme", "support")].rules[0].name == "hi"
    )


def test_a_rule_calling_a_tool_the_agent_may_not_use_is_refused(tmp_path: Path) -> None:
    body = base()
    rules = {
        "rules": [
            {
                "name": "r",
                "lane": "a",
                "match": {"keywords": ["r"]},
                "call": {"tool": "refund_order", "args": {}},
                "reply": "x",
            }
        ]
    }
    body["tenants"]["acme"]["agents"]["support"]["pipeline"]["rules"] = rules
    loaded = load_config(write(tmp_path, body))
    with pytest.raises(InvalidValue, match="refund_order"):
        build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))


def test_secret_references_that_the_environment_lacks_are_listed(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["tools"].append(
        {
            "name": "pay",
            "policy": "idempotent",
            "http": {
                "method": "POST",
                "url": "https://pay.example/${PAY_HOST}",
                "headers": {"Authorization": "Bearer ${PAY_TOKEN}"},
            },
        }
    )
    loaded = load_config(write(tmp_path, body))
    assert loaded.missing_secrets({"PAY_HOST": "x"}) == ["PAY_TOKEN"]
    assert "PAY_TOKEN" not in loaded.config.model_dump_json().replace("${PAY_TOKEN}", "")


def test_channel_policies_layer_over_the_defaults() -> None:
    web = ChannelPolicy(AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000)
    adaptive_900 = ChannelPolicyFields(mode=AccumulationMode.ADAPTIVE, window_ms=900)
    layered = channel_policy(Channel.WEB, web, adaptive_900)
    assert (layered.window_ms, layered.typing_grace_ms) == (900, 4000)
    off_fields = ChannelPolicyFields(mode=AccumulationMode.OFF)
    assert channel_policy(Channel.WEB, web, off_fields).mode is AccumulationMode.OFF
    off = ChannelPolicy(AccumulationMode.OFF)
    # a tenant turned web off, an agent turns it back on: acf's web default, not a generic one
    back_on = channel_policy(Channel.WEB, off, ChannelPolicyFields(mode=AccumulationMode.ADAPTIVE))
    assert back_on == DEFAULT_CHANNEL_POLICIES[Channel.WEB]
    assert (back_on.window_ms, back_on.min_window_ms, back_on.max_window_ms) == (600, 250, 3000)
    fixed = channel_policy(
        Channel.EMAIL,
        off,
        ChannelPolicyFields(mode=AccumulationMode.FIXED, window_ms=500, max_window_ms=2000),
    )
    assert (fixed.mode, fixed.window_ms, fixed.max_window_ms) == (AccumulationMode.FIXED, 500, 2000)
    with pytest.raises(InvalidValue, match="min_window_ms <= window_ms"):
        channel_policy(
            Channel.WEB, web, ChannelPolicyFields(mode=AccumulationMode.ADAPTIVE, window_ms=9000)
        )


def test_fallback_is_set_without_restating_the_mode(tmp_path: Path) -> None:
    web = ChannelPolicy(AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000)
    ladder = ChannelPolicyFields(fallback=[Channel.SMS, Channel.EMAIL])
    assert channel_policy(Channel.WEB, web, ladder) == ChannelPolicy(
        AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000, (Channel.SMS, Channel.EMAIL)
    )
    # a later layer that changes only the window keeps the ladder; [] removes it
    laddered = channel_policy(Channel.WEB, web, ladder)
    kept = channel_policy(Channel.WEB, laddered, ChannelPolicyFields(window_ms=700))
    assert (kept.window_ms, kept.fallback) == (700, (Channel.SMS, Channel.EMAIL))
    assert channel_policy(Channel.WEB, kept, ChannelPolicyFields(fallback=[])).fallback == ()
    off = ChannelPolicy(AccumulationMode.OFF)
    assert channel_policy(Channel.EMAIL, off, ladder).mode is AccumulationMode.OFF
    with pytest.raises(InvalidValue, match="window_ms need a mode"):
        channel_policy(Channel.EMAIL, off, ChannelPolicyFields(window_ms=500))
    body = base()
    body["tenants"]["acme"]["channels"] = {"whatsapp": {"fallback": ["sms", "email"]}}
    body["tenants"]["acme"]["agents"]["support"]["channels"] = {
        "whatsapp": {"mode": "fixed", "window_ms": 900, "min_window_ms": 0}
    }
    agents = build_agents(
        load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
    )
    policy = agents.get("acme", "support").settings.policy_for(Channel.WHATSAPP)
    assert (policy.mode, policy.window_ms) == (AccumulationMode.FIXED, 900)
    assert policy.fallback == (Channel.SMS, Channel.EMAIL)
    body["tenants"]["acme"]["channels"] = {"whatsapp": {"fallback": ["sms", "sms"]}}
    with pytest.raises(ConfigError, match=r"tenants\.acme\.channels\.whatsapp: .*twice"):
        build_agents(
            load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
        )
    body["tenants"]["acme"]["channels"] = {"whatsapp": {"fallback": ["fax"]}}
    with pytest.raises(ConfigError, match="fallback"):
        load_config(write(tmp_path, body))


def test_agent_settings_and_tenant_then_agent_channel_layers(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["channels"] = {
        "web": {"mode": "fixed", "window_ms": 500, "min_window_ms": 0, "max_window_ms": 500}
    }
    body["tenants"]["acme"]["agents"]["support"]["channels"] = {"sms": {"mode": "off"}}
    body["tenants"]["acme"]["agents"]["support"]["settings"] = {"max_attempts": 5}
    agents = build_agents(
        load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
    )
    settings = agents.get("acme", "support").settings
    assert settings.max_attempts == 5
    assert settings.policy_for(Channel.WEB).mode is AccumulationMode.FIXED
    assert settings.policy_for(Channel.SMS).mode is AccumulationMode.OFF
    assert settings.policy_for(Channel.WHATSAPP).mode is AccumulationMode.ADAPTIVE


def test_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "validate", str(write(tmp_path, base()))])
    assert ok.exit_code == 0 and "valid (1 tenants, 1 agents" in ok.output
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["settings"] = {"max_attempts": 0}
    bad = runner.invoke(app, ["config", "validate", str(write(tmp_path, body))])
    assert bad.exit_code == 2
    assert "settings.max_attempts: Input should be greater than or equal to 1" in bad.output
    missing = runner.invoke(app, ["config", "validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_field_paths_leave_out_union_tags() -> None:
    from acf.config.load import field_path

    assert field_path(("tenants", "a", "tools", 1, "http", "http", "url")) == (
        "tenants.a.tools.1.http.url"
    )
    assert field_path(("tenants", "a", "agents", "s", "pipeline", "rules", "rules")) == (
        "tenants.a.agents.s.pipeline.rules"
    )
    assert field_path(("tenants", "a", "agents", "s", "pipeline", "python", "factory")) == (
        "tenants.a.agents.s.pipeline.factory"
    )
    assert field_path(()) == "(top level)"


def test_yaml_off_is_the_off_mode_and_a_zero_rate_is_refused(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["channels"] = {"email": {"mode": False}}  # what `mode: off` reads as
    loaded = load_config(write(tmp_path, body))
    agents = build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))
    assert agents.get("acme", "support").settings.policy_for(Channel.EMAIL).mode is (
        AccumulationMode.OFF
    )
    body["tenants"]["acme"]["limits"] = {"accepted_messages": "0/second"}
    assert "at least 1 message" in error_of(tmp_path, body)
    body["tenants"]["acme"]["limits"] = {"accepted_messages": "1/second;0/minute"}
    assert "expected one rate" in error_of(tmp_path, body)


def test_enabling_accumulation_on_an_off_channel_starts_from_a_generic_window(
    tmp_path: Path,
) -> None:
    body = base()
    body["tenants"]["acme"]["channels"] = {"email": {"mode": "fixed", "window_ms": 900}}
    agents = build_agents(
        load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
    )
    email = agents.get("acme", "support").settings.policy_for(Channel.EMAIL)
    assert (email.mode, email.window_ms) == (AccumulationMode.FIXED, 900)
    body["tenants"]["acme"]["channels"] = {"web": {"mode": "fixed", "window_ms": 9000}}
    with pytest.raises(ConfigError, match=r"acf.yaml: tenants.acme.channels.web: .*window_ms"):
        build_agents(
            load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
        )


def test_a_python_factory_that_fails_or_returns_no_pipeline_is_named(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = {
        "kind": "python",
        "factory": "json:loads",
        "options": {"s": "1"},
    }
    with pytest.raises(ConfigError, match=r"pipeline.factory: json:loads returned int, not a"):
        build_agents(
            load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
        )
    body["tenants"]["acme"]["agents"]["support"]["pipeline"]["options"] = {"nope": 1}
    with pytest.raises(ConfigError, match=r"pipeline.factory: json:loads: TypeError"):
        build_agents(
            load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
        )


def test_segment_pacing_is_a_delivery_field_kept_through_the_layers() -> None:
    off = ChannelPolicy(AccumulationMode.OFF)
    paced = channel_policy(Channel.EMAIL, off, ChannelPolicyFields(segment_pacing_ms=500))
    assert (paced.mode, paced.segment_pacing_ms) == (AccumulationMode.OFF, 500)
    whatsapp = DEFAULT_CHANNEL_POLICIES[Channel.WHATSAPP]
    fixed = channel_policy(
        Channel.WHATSAPP, whatsapp, ChannelPolicyFields(mode=AccumulationMode.FIXED)
    )
    assert fixed.segment_pacing_ms == 1000  # acf's WhatsApp default survives a mode change
    quiet = channel_policy(
        Channel.WHATSAPP, fixed, ChannelPolicyFields(mode=AccumulationMode.OFF, segment_pacing_ms=0)
    )
    assert (quiet.mode, quiet.segment_pacing_ms) == (AccumulationMode.OFF, 0)
    with pytest.raises(InvalidValue, match="segment_pacing_ms must not be negative"):
        ChannelPolicy(AccumulationMode.OFF, segment_pacing_ms=-1)
