"""`acf keys`: keys are printed once, stored hashed, listed by id, and revoked; a key is
only made for a tenant of the configuration acf serves."""

import asyncio
import sqlite3
from pathlib import Path

import yaml
from typer.testing import CliRunner

from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.bootstrap import database_path
from acf.entrypoints.cli import app
from acf.ports.api_keys import KEY_PREFIX, hash_key
from tests.http.conftest import config


def config_file(tmp_path: Path) -> str:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(config()), encoding="utf-8")  # tenants acme and globex
    return str(path)


def test_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "data")
    made = ["keys", "create", "--tenant", "acme", "--name", "ci", "--data-dir", data]
    created = runner.invoke(app, [*made, "--config", config_file(tmp_path)])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    keys = SqliteApiKeys(database_path(tmp_path / "data"))
    record = asyncio.run(keys.authenticate(key))
    assert record is not None and record.tenant == "acme" and record.name == "ci"
    # only the hash is stored
    raw = sqlite3.connect(database_path(tmp_path / "data"))
    try:
        rows = raw.execute("SELECT * FROM api_keys").fetchall()
    finally:
        raw.close()
    assert key not in repr(rows) and hash_key(key) in repr(rows)

    listed = runner.invoke(app, ["keys", "list", "--tenant", "acme", "--data-dir", data])
    assert f"{record.key_id}\tci\tactive" in listed.stdout
    other = runner.invoke(app, ["keys", "list", "--tenant", "globex", "--data-dir", data])
    assert other.stdout == ""

    wrong_tenant = runner.invoke(
        app, ["keys", "revoke", record.key_id, "--tenant", "globex", "--data-dir", data]
    )
    assert wrong_tenant.exit_code == 1
    assert asyncio.run(keys.authenticate(key)) is not None
    revoked = runner.invoke(
        app, ["keys", "revoke", record.key_id, "--tenant", "acme", "--data-dir", data]
    )
    assert revoked.exit_code == 0
    assert asyncio.run(keys.authenticate(key)) is None
    again = runner.invoke(
        app, ["keys", "revoke", record.key_id, "--tenant", "acme", "--data-dir", data]
    )
    assert again.exit_code == 1 and "no active key" in again.output


def stored_keys(data_dir: Path) -> list[tuple[object, ...]]:
    if not database_path(data_dir).exists():
        return []
    raw = sqlite3.connect(database_path(data_dir))
    try:
        return raw.execute("SELECT * FROM api_keys").fetchall()
    finally:
        raw.close()


def test_a_tenant_the_configuration_lacks_is_refused_with_the_configured_ones(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    # Without --config the bundled demo is what `acf serve` runs: its only tenant is demo.
    demo = runner.invoke(
        app,
        ["keys", "create", "--tenant", "acme", "--data-dir", str(data)],
        env={"ACF_CONFIG": None},
    )
    assert demo.exit_code == 2, demo.output
    assert "tenant 'acme' is not in" in demo.stderr and "its tenants: demo" in demo.stderr
    assert "pass --config" in demo.stderr
    assert demo.stdout == ""  # no key printed
    made = ["keys", "create", "--tenant", "initech", "--data-dir", str(data)]
    own = runner.invoke(app, [*made, "--config", config_file(tmp_path)])
    assert own.exit_code == 2 and "its tenants: acme, globex" in own.stderr
    assert stored_keys(data) == []
    # ACF_CONFIG names the file, as for `acf serve`
    by_env = runner.invoke(
        app,
        ["keys", "create", "--tenant", "globex", "--data-dir", str(data)],
        env={"ACF_CONFIG": config_file(tmp_path)},
    )
    assert by_env.exit_code == 0, by_env.output
    assert len(stored_keys(data)) == 1
    fine = runner.invoke(app, ["keys", "create", "--tenant", "demo", "--data-dir", str(data)])
    assert fine.exit_code == 0, fine.output


def test_an_invalid_configuration_is_reported_and_no_key_is_made(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ntenants: {}\n", encoding="utf-8")
    data = tmp_path / "data"
    done = CliRunner().invoke(
        app,
        ["keys", "create", "--tenant", "acme", "--data-dir", str(data), "--config", str(broken)],
    )
    assert done.exit_code == 2 and "broken.yaml: tenants" in done.stderr
    assert stored_keys(data) == []
