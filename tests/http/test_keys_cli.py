"""`acf keys`: keys are printed once, stored hashed, listed by id, and revoked."""

import asyncio
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.bootstrap import database_path
from acf.entrypoints.cli import app
from acf.ports.api_keys import KEY_PREFIX, hash_key


def test_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "data")
    created = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--name", "ci", "--data-dir", data]
    )
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
