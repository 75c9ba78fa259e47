"""The installed ``acf`` console script, run as a real process."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import acf
from acf.adapters.sql import migrate
from tests.integration.services import require_postgres, temporary_database

ACF = Path(sys.executable).parent / "acf"
TIMEOUT_S = 60


def run_acf(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``acf ARGS``; fail the test on a non-zero exit, showing what it printed."""
    # The options under test must not be overridden by the caller's environment.
    env = {k: v for k, v in os.environ.items() if k not in ("ACF_DATA_DIR", "ACF_DATABASE_URL")}
    result = subprocess.run(
        [str(ACF), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        check=False,
    )
    assert result.returncode == 0, (
        f"acf {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def test_console_script_is_installed() -> None:
    assert ACF.is_file(), f"{ACF} missing: is acf installed in this environment?"


def test_version() -> None:
    assert run_acf("--version").stdout.strip() == f"acf {acf.__version__}"


def test_sqlite_upgrade_current_downgrade(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    head = migrate.head_revision()

    before = run_acf("db", "current", "--data-dir", str(data_dir)).stdout
    assert "current: base" in before
    assert f"head: {head}" in before
    assert "needs `acf db upgrade`" in before

    upgraded = run_acf("db", "upgrade", "--data-dir", str(data_dir)).stdout
    assert f"database at revision {head}" in upgraded
    assert (data_dir / "acf.db").is_file()

    after = run_acf("db", "current", "--data-dir", str(data_dir)).stdout
    assert f"current: {head}" in after
    assert "up to date" in after
    assert "needs" not in after

    downgraded = run_acf("db", "downgrade", "base", "--data-dir", str(data_dir)).stdout
    assert "database at revision base" in downgraded
    assert "current: base" in run_acf("db", "current", "--data-dir", str(data_dir)).stdout


def test_sqlite_data_dir_is_created(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    run_acf("db", "upgrade", "--data-dir", str(data_dir))
    assert migrate.current_revision(f"sqlite:///{data_dir / 'acf.db'}") == migrate.head_revision()


@pytest.mark.postgres
def test_postgres_upgrade_current_downgrade() -> None:
    require_postgres()
    head = migrate.head_revision()
    with temporary_database() as url:
        before = run_acf("db", "current", "--database-url", url).stdout
        assert "current: base" in before
        assert "needs `acf db upgrade`" in before

        upgraded = run_acf("db", "upgrade", "--database-url", url).stdout
        assert f"database at revision {head}" in upgraded
        assert migrate.current_revision(url) == head
        assert "up to date" in run_acf("db", "current", "--database-url", url).stdout

        downgraded = run_acf("db", "downgrade", "base", "--database-url", url).stdout
        assert "database at revision base" in downgraded
        assert migrate.current_revision(url) is None


async def test_migrating_a_database_a_running_acf_holds_is_refused(tmp_path: Path) -> None:
    from acf.bootstrap import open_embedded

    embedded = await open_embedded(tmp_path, {"t1": ["support"]})
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("ACF_DATA_DIR", "ACF_DATABASE_URL")}
        for command in (["upgrade"], ["downgrade", "base"]):
            result = await asyncio.to_thread(
                subprocess.run,
                [str(ACF), "db", *command, "--data-dir", str(tmp_path)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                env=env,
                check=False,
            )
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"already open in another process (pid {os.getpid()})" in result.stderr
        # Reading the revision stays possible while it runs, and the schema is untouched.
        assert (
            f"current: {migrate.head_revision()}"
            in run_acf("db", "current", "--data-dir", str(tmp_path)).stdout
        )
        await embedded.store.ping()
    finally:
        await embedded.close()


def test_current_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    assert "current: base" in run_acf("db", "current", "--data-dir", str(tmp_path / "d")).stdout
    assert not (tmp_path / "d").exists()


def test_ledger_lists_executions_by_tenant_customer_and_tool(tmp_path: Path) -> None:
    from acf.adapters.sqlite import open_sqlite_store
    from acf.domain.tools import LedgerStatus, SideEffectPolicy
    from acf.ports.ledger import BeginExecution, LedgerEntry
    from acf.testing import VirtualClock

    async def seed() -> None:
        store = await open_sqlite_store(tmp_path / "acf.db", VirtualClock())
        try:
            for i, (customer, tool) in enumerate([("alice", "refund"), ("bob", "refund")]):
                entry = LedgerEntry(
                    "t1",
                    f"x{i}",
                    f"t1:{tool}:{i}",
                    tool,
                    SideEffectPolicy.IRREVERSIBLE,
                    LedgerStatus.STARTED,
                    "s",
                    "g",
                    "turn",
                    customer,
                    {"order": i},
                    1_700_000_000_000 + i * 1000,
                )
                await store.uow.commit("t1", [BeginExecution(entry)])
        finally:
            await store.close()

    asyncio.run(seed())
    out = run_acf(
        "ledger", "--tenant", "t1", "--customer", "alice", "--json", "--data-dir", str(tmp_path)
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["idempotency_key"] for r in rows] == ["t1:refund:0"]
    table = run_acf("ledger", "--tenant", "t1", "--tool", "refund", "--data-dir", str(tmp_path))
    assert "2 execution(s)" in table.stdout
    other = run_acf("ledger", "--tenant", "t2", "--data-dir", str(tmp_path))
    assert "0 execution(s)" in other.stdout
    missing = subprocess.run(
        [str(ACF), "ledger", "--tenant", "t1", "--data-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "no database at" in missing.stderr
