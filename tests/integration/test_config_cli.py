"""``acf config push|history|diff|promote|canary|status|rollback|explain`` against a served
acf over HTTP, with the exit codes they promise (2: bad input, 1: refused or unreachable),
``explain --file`` offline, and ``acf keys create --scope admin``."""

import asyncio
import json
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.bootstrap import database_path
from acf.entrypoints.cli import app
from tests.http.conftest import free_port
from tests.integration.config_api_server import serve, served_config, tenant_yaml

runner = CliRunner()
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


def acf(*args: str) -> tuple[int, str, str]:
    """The command's exit code, stdout and stderr. The runner captures the process's
    stdout, where the served acf in this process logs meanwhile: its lines are dropped."""
    result = runner.invoke(app, ["config", *args])
    out = "".join(
        line for line in result.stdout.splitlines(keepends=True) if not LOG_LINE.match(line)
    )
    return result.exit_code, out, result.stderr


async def run(*args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(acf, *args)


async def test_the_lifecycle_from_the_command_line(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served:
        remote = ["--url", served.base_url, "--key", served.keys[("acme", "admin")]]
        both = tmp_path / "acf.yaml"  # the file acf serves: pushed at its start as v1
        first = tmp_path / "edits" / "acme.yaml"
        first.parent.mkdir()
        first.write_text(tenant_yaml(deadline_ms=9000), encoding="utf-8")

        code, _, err = await run("push", str(both), *remote)
        assert code == 2 and "choose one with --tenant" in err
        code, out, err = await run("push", str(both), "--tenant", "acme", *remote)
        assert code == 0, err
        assert "unchanged: the same configuration is v1 (live)" in out  # same hash as serve's

        code, out, err = await run("push", str(first), "-m", "longer deadline", *remote)
        assert code == 0, err
        assert out.startswith("pushed v2 (draft) sha256:")
        code, out, _ = await run("history", *remote)
        assert code == 0 and "v2" in out and "longer deadline" in out and "live: v1" in out
        code, out, _ = await run("history", "--json", *remote)
        listed = json.loads(out)
        assert [v["label"] for v in listed["items"]] == ["v2", "v1"]
        assert listed["items"][0]["author"]  # the user pushing, by default

        code, out, _ = await run("diff", "v1", "2", *remote)
        assert code == 0 and "agents.support.settings.deadline_ms" in out and "9000" in out
        code, out, _ = await run("diff", "2", "2", *remote)
        assert "resolve to the same configuration" in out

        code, _, err = await run("promote", "2", *remote)
        assert code == 1 and "no passed scenarios gate" in err and "HTTP 409" in err
        code, out, err = await run("promote", "v2", "--force", *remote)
        assert code == 0 and "v2 is live (forced)" in out, err

        third = tmp_path / "edits" / "acme3.yaml"
        third.write_text(tenant_yaml(deadline_ms=4000), encoding="utf-8")
        assert (await run("push", str(third), *remote))[0] == 0
        code, _, err = await run("canary", "3", "--share", "10", *remote)
        assert code == 1 and "no passed scenarios gate" in err and "HTTP 409" in err
        code, out, err = await run("canary", "V3", "--share", "10", "--force", *remote)
        assert code == 0 and "v3 on canary at 10% of new sessions (forced)" in out, err
        code, out, _ = await run("status", *remote)
        assert "canary: v3 at 10%" in out and "canary" in out
        code, out, _ = await run("rollback", "--canary", *remote)
        assert code == 0 and "canary rolled back" in out
        code, out, _ = await run("status", *remote)
        assert "canary v3 was rolled back by key" in out
        code, out, _ = await run("rollback", *remote)
        assert code == 0 and "rolled back: v1 is live" in out
        code, _, err = await run("rollback", *remote)
        assert code == 1 and "no previous live version" in err

        code, out, err = await run(
            "explain", "acme", "support", "settings.deadline_ms", "--json", *remote
        )
        assert code == 0, err
        explained = json.loads(out)
        assert explained["version"] == "v1" and explained["rows"][0]["layer"] == "default"
        code, out, _ = await run(
            "explain", "acme", "support", "settings", "--version", "2", *remote
        )
        assert code == 0 and "settings.deadline_ms" in out and "9000" in out
        code, _, err = await run("explain", "globex", "support", *remote)
        assert code == 2 and "tenant 'acme'" in err


async def test_errors_say_what_is_wrong_with_the_right_exit_code(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served:
        admin = ["--url", served.base_url, "--key", served.keys[("acme", "admin")]]
        api = ["--url", served.base_url, "--key", served.keys[("acme", "api")]]
        code, _, err = await run("history", "--url", served.base_url)
        assert code == 2 and "--key or set ACF_API_KEY" in err
        code, _, err = await run("history", *api)
        assert code == 1 and "scope 'admin'" in err and "HTTP 403" in err
        unused = f"http://127.0.0.1:{free_port()}"
        code, _, err = await run("history", "--url", unused, "--key", "k")
        assert code == 1 and f"cannot reach acf at {unused}" in err
        code, _, err = await run("diff", "1", "99", *admin)
        assert code == 2 and "no configuration version v99" in err
        code, _, err = await run("diff", "one", "2", *admin)
        assert code == 2 and "not a version" in err

        invalid = tmp_path / "bad.yaml"
        invalid.write_text(tenant_yaml(deadline_ms=-1), encoding="utf-8")
        code, _, err = await run("push", str(invalid), *admin)
        assert code == 2 and "settings.deadline_ms" in err
        code, _, err = await run("push", str(tmp_path / "missing.yaml"), *admin)
        assert code == 2 and "cannot read" in err
        globex = tmp_path / "globex.yaml"
        globex.write_text(tenant_yaml("globex", deadline_ms=3000), encoding="utf-8")
        code, _, err = await run("push", str(globex), *admin)
        assert code == 1 and "may push only tenant 'acme'" in err


def test_explain_offline_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(served_config()), encoding="utf-8")
    code, out, err = acf("explain", "acme", "support", "settings.deadline_ms", "--file", str(path))
    assert code == 0, err
    assert "settings.deadline_ms" in out and "default" in out
    code, _, err = acf("explain", "acme", "nobody", "--file", str(path))
    assert code == 2 and "no agent 'nobody'" in err


def test_keys_create_with_the_admin_scope(tmp_path: Path) -> None:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(served_config()), encoding="utf-8")
    data = ["--data-dir", str(tmp_path / "data"), "--config", str(path)]
    made = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "admin", *data])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    record = asyncio.run(SqliteApiKeys(database_path(tmp_path / "data")).authenticate(key))
    assert record is not None and record.scope == "admin"
    assert "(admin)" in made.stderr
    wrong = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "root", *data])
    assert wrong.exit_code == 2 and "--scope must be one of api, admin, operator" in wrong.stderr
    listed = runner.invoke(
        app, ["keys", "list", "--tenant", "acme", "--data-dir", str(tmp_path / "data")]
    )
    assert listed.stdout.strip().endswith("\tadmin")
