"""The process settings: one typed object from the environment and `acf serve`'s options."""

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from acf.bootstrap.settings import AcfSettings, Role, SettingsError, read_settings
from acf.entrypoints.cli import app
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime import SlotSettings

DOCS = Path(__file__).parents[2] / "docs" / "deploying.md"


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({"ACF_DB_POOL_SIZE": "ten"}, {}, "ACF_DB_POOL_SIZE='ten': expected a whole number"),
        ({"ACF_WORKER_SLOTS": "0"}, {}, "ACF_WORKER_SLOTS='0': Input should be greater"),
        ({"ACF_RECOVERY_INTERVAL_MS": "1.5"}, {}, "ACF_RECOVERY_INTERVAL_MS='1.5': "),
        ({"ACF_SHUTDOWN_GRACE_S": "-1"}, {}, "ACF_SHUTDOWN_GRACE_S='-1': Input should be"),
        ({"ACF_PORT": "70000"}, {}, "ACF_PORT='70000': Input should be less than"),
        (
            {"ACF_LEASE_TTL_MS": "1000", "ACF_LEASE_RENEW_MS": "1000"},
            {},
            "ACF_LEASE_RENEW_MS (1000) must be below ACF_LEASE_TTL_MS (1000)",
        ),
        ({"ACF_ROLE": "batch"}, {}, "ACF_ROLE='batch': expected one of api, worker, all"),
        ({}, {"role": "batch"}, "--role 'batch': expected one of api, worker, all"),
        ({}, {"role": "api"}, "--role api needs --database-url (ACF_DATABASE_URL)"),
        ({"ACF_ROLE": "worker"}, {}, "--role worker needs --database-url (ACF_DATABASE_URL)"),
    ],
)
def test_an_invalid_setting_is_an_error_naming_it(
    environ: dict[str, str], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        read_settings(options, environ=environ)
    assert str(caught.value).startswith(message)


def test_a_database_url_is_not_repeated_in_an_error() -> None:
    secret = "postgresql://acf:hunter2@db/acf"
    with pytest.raises(SettingsError) as caught:
        read_settings({"database_url": secret}, environ={"ACF_TENANT_SLOTS": "x"})
    assert "hunter2" not in str(caught.value)


def test_options_win_over_the_environment_which_wins_over_defaults() -> None:
    settings = read_settings(
        {"port": 9000, "role": "worker", "database_url": "postgresql://db/acf"},
        environ={"ACF_PORT": "8001", "ACF_DB_POOL_SIZE": "7", "ACF_REDIS_URL": "", "X": "1"},
    )
    assert settings.port == 9000
    assert settings.role is Role.WORKER
    assert settings.db_pool_size == 7
    assert settings.redis_url is None  # an empty variable is unset
    assert settings.host == "127.0.0.1"


def test_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACF_TENANT_SLOTS", "5")
    monkeypatch.setenv("ACF_LEASE_TTL_MS", "9000")
    monkeypatch.setenv("ACF_LEASE_RENEW_MS", "3000")
    monkeypatch.setenv("ACF_DATA_DIR", "/srv/acf")
    settings = read_settings({"port": 1})
    assert settings.tenant_slots == 5 and settings.port == 1
    assert settings.data_dir == Path("/srv/acf")
    runtime = settings.runtime
    assert runtime.lease == LeaseSettings(ttl_ms=9000, renew_every_ms=3000)
    assert runtime.slots == SlotSettings(total=256, per_tenant=5)
    assert runtime.recovery_interval_ms == 1000


@pytest.mark.parametrize(
    ("raw", "wanted"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("no", False), ("2", False)],
)
def test_log_locals_reads_as_the_logging_module_does(raw: str, wanted: bool) -> None:
    assert read_settings(environ={"ACF_LOG_LOCALS": raw}).log_locals is wanted


def test_the_defaults_are_the_documented_ones() -> None:
    settings = read_settings(environ={})
    base = LeaseSettings()
    assert (settings.lease_ttl_ms, settings.lease_renew_ms) == (base.ttl_ms, base.renew_every_ms)
    assert (settings.db_pool_size, settings.recovery_interval_ms) == (10, 1000)
    assert (settings.worker_slots, settings.tenant_slots, settings.shutdown_grace_s) == (
        256,
        64,
        10.0,
    )
    assert settings.role is Role.ALL and settings.database_url is None


def _serve_options() -> list[Any]:
    command: Any = typer.main.get_command(app)
    serve = command.get_command(command.context_class(command), "serve")
    assert serve is not None
    return [p for p in serve.params if p.param_type_name == "option"]


def test_every_serve_option_is_a_setting_with_the_same_variable_and_default() -> None:
    fields = AcfSettings.model_fields
    options = _serve_options()
    assert options
    for option in options:
        assert option.name in fields, option.name
        assert option.envvar == "ACF_" + option.name.upper()
        default = fields[option.name].default
        assert option.default == (default.value if isinstance(default, Role) else default)


def test_every_documented_variable_is_a_setting() -> None:
    documented = re.findall(r"^\| `ACF_([A-Z_]+)` \|", DOCS.read_text(), re.MULTILINE)
    assert "DB_POOL_SIZE" in documented
    for name in documented:
        assert name.lower() in AcfSettings.model_fields, name


def test_serve_refuses_an_invalid_variable_before_starting(tmp_path: Path) -> None:
    env = {"ACF_DB_POOL_SIZE": "many", "ACF_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 2
    assert "error: ACF_DB_POOL_SIZE='many': expected a whole number" in result.output
    assert not (tmp_path / "data").exists()
