"""``acf config``: the configuration file and its versions (DESIGN §17).

``validate`` checks a file here, without anything running. The lifecycle commands (``push``,
``history``, ``diff``, ``promote``, ``canary``, ``rollback``, ``status``, ``explain``) talk
to a running acf over HTTP (``--url``, ``ACF_URL``) with an admin key of the tenant
(``--key``, ``ACF_API_KEY``); ``explain --file`` works offline on a file.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from acf.entrypoints.cli.common import app
from acf.entrypoints.cli.config_remote import DEFAULT_URL, Key, Remote, Url, fail, parse_version

config_app = typer.Typer(no_args_is_help=True, help="The configuration file and its versions.")
app.add_typer(config_app, name="config")

Json = Annotated[bool, typer.Option("--json", help="The API's JSON answer instead of a table.")]


@config_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="The YAML configuration file.")],
) -> None:
    """Validate FILE: exit 0 and a summary when valid, else exit 2 with each problem
    (the file, the path of the field, what was expected)."""
    import asyncio

    import httpx

    from acf.bootstrap import ToolBackends, build_agents
    from acf.config.load import ConfigError, load_config
    from acf.demo import demo_tools
    from acf.domain.errors import InvalidValue

    client = httpx.AsyncClient()
    try:
        loaded = load_config(file)
        build_agents(loaded, ToolBackends(client, demo_tools()))
    except (ConfigError, InvalidValue) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        asyncio.run(client.aclose())
    tenants = loaded.config.tenants
    agents = sum(len(t.agents) for t in tenants.values())
    typer.echo(f"{file}: valid ({len(tenants)} tenants, {agents} agents, {loaded.version})")
    for name in loaded.missing_secrets():
        typer.echo(f"warning: secret ${{{name}}} is not set in this environment", err=True)


@config_app.command("push")
def push(
    file: Annotated[Path, typer.Argument(help="The YAML configuration file.")],
    message: Annotated[str, typer.Option("--message", "-m", help="Why this version.")] = "",
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="The tenant to push, when the file has several."),
    ] = None,
    author: Annotated[
        str | None, typer.Option("--author", help="Who pushes it (default: your user name).")
    ] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Push one tenant of FILE as a new draft version (with the files it names), checked
    here first, then by acf. Pushing the same content again names the existing version."""
    import getpass

    from acf.entrypoints.cli.config_upload import tenant_upload

    remote = Remote.of(url, key)
    body = tenant_upload(file, tenant)
    body["message"] = message
    body["author"] = author or getpass.getuser()
    pushed = remote.call("POST", "/v1/config/versions", body=body)
    if pushed["created"]:
        typer.echo(f"pushed {pushed['label']} (draft) {pushed['content_hash']}")
    else:
        typer.echo(
            f"unchanged: the same configuration is {pushed['label']} ({pushed['status']}) "
            f"{pushed['content_hash']}"
        )


@config_app.command("history")
def history(
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """The tenant's versions, newest first: status, author, message, hash, git commit."""
    from acf.entrypoints.cli.config_tables import history_table, print_table

    listed = Remote.of(url, key).call("GET", "/v1/config/versions", params={"limit": limit})
    if as_json:
        _echo_json(listed)
        return
    print_table(history_table(listed))
    typer.echo(_pointer_line(listed))


@config_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="The first version (3 or v3).")],
    b: Annotated[str, typer.Argument(help="The second version.")],
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """What changes from version A to version B, per key of the resolved configuration."""
    from acf.entrypoints.cli.config_tables import diff_table, print_table

    params = {"a": parse_version(a), "b": parse_version(b)}
    answer = Remote.of(url, key).call("GET", "/v1/config/diff", params=params)
    if as_json:
        _echo_json(answer)
        return
    if not answer["rows"]:
        typer.echo(f"{answer['a']} and {answer['b']} resolve to the same configuration")
        return
    print_table(diff_table(answer))
    typer.echo(f"{len(answer['rows'])} key(s) differ")


@config_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="The version to make live (3 or v3).")],
    force: Annotated[
        bool, typer.Option("--force", help="Without a passed scenarios gate (audited).")
    ] = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Make VERSION live for every new session (blue-green). Needs a passed scenarios gate
    (`acf scenarios run PATH --tenant T --version N`) unless --force."""
    number = parse_version(version)
    body = {"force": force}
    pointer = Remote.of(url, key).call("POST", f"/v1/config/versions/{number}/promote", body=body)
    typer.echo(f"v{number} is live" + (" (forced)" if force else ""))
    typer.echo(_pointer_line(pointer))


@config_app.command("canary")
def canary(
    version: Annotated[str, typer.Argument(help="The version to try (3 or v3).")],
    share: Annotated[int, typer.Option("--share", min=1, max=100, help="Percent of new sessions.")],
    force: Annotated[
        bool, typer.Option("--force", help="Start it without a passed scenarios gate (audited).")
    ] = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Give VERSION to a share of new sessions (sticky per session); acf then rolls it back
    on a breach or moves it up step by step. Starting it needs a passed scenarios gate
    (`acf scenarios run PATH --tenant T --version N`) unless --force. On the running
    canary: set its share (no gate)."""
    number = parse_version(version)
    body = {"share": share, "force": force}
    pointer = Remote.of(url, key).call("POST", f"/v1/config/versions/{number}/canary", body=body)
    forced = " (forced)" if force else ""
    typer.echo(f"v{number} on canary at {pointer['canary_share']}% of new sessions{forced}")


@config_app.command("rollback")
def rollback(
    canary_only: Annotated[
        bool, typer.Option("--canary", help="Retire the running canary only.")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Said in the audit event.")] = "",
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Back to the previous live version, within seconds: new sessions get it, and the
    sessions on the version left move to it at their next turn."""
    body = {"canary": canary_only, "reason": reason or "rolled back with acf config rollback"}
    pointer = Remote.of(url, key).call("POST", "/v1/config/rollback", body=body)
    typer.echo("canary rolled back" if canary_only else f"rolled back: v{pointer['live']} is live")
    typer.echo(_pointer_line(pointer))


@config_app.command("status")
def status(as_json: Json = False, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """The live version, the canary's share and both arms' stats, the last decisions."""
    from acf.entrypoints.cli.config_tables import arms_table, print_table

    answer = Remote.of(url, key).call("GET", "/v1/config/canary")
    if as_json:
        _echo_json(answer)
        return
    typer.echo(_pointer_line(answer))
    if answer["arms"]:
        print_table(arms_table(answer))
    last = answer.get("last_rollback")
    if last:
        how = "automatically" if last["automatic"] else f"by {last['actor']}"
        typer.echo(f"canary {last['version']} was rolled back {how}: {last['reason']}")


@config_app.command("explain")
def explain(
    tenant: Annotated[str, typer.Argument(help="The tenant.")],
    agent: Annotated[str, typer.Argument(help="The agent.")],
    key_name: Annotated[
        str | None, typer.Argument(metavar="[KEY]", help="A dotted key (or its prefix).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="A version (default: the live one).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Explain this file, offline, instead.")
    ] = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Each resolved value of AGENT with the layer and file that set it."""
    from acf.entrypoints.cli.config_tables import explain_table, print_table

    if file is not None:
        answer = _explain_file(file, tenant, agent, key_name)
    else:
        params = {
            "agent": agent,
            "key": key_name,
            "version": None if version is None else parse_version(version),
        }
        answer = Remote.of(url, key).call("GET", "/v1/config/explain", params=params)
        if answer.get("tenant") != tenant:
            fail(f"the key is tenant {answer.get('tenant')!r}'s, not {tenant!r}'s", 2)
    if as_json:
        _echo_json(answer)
        return
    print_table(explain_table(answer))


def _explain_file(file: Path, tenant: str, agent: str, key: str | None) -> dict[str, Any]:
    from acf.config.layers import explain as explain_rows
    from acf.config.load import ConfigError, load_config

    try:
        loaded = load_config(file)
        rows = explain_rows(loaded, tenant, agent, key)
    except ConfigError as exc:
        fail(str(exc), 2)
    return {
        "tenant": tenant,
        "agent": agent,
        "version": f"{file} ({loaded.version})",
        "rows": [
            {"key": r.key, "value": r.value, "layer": r.layer, "source": r.source} for r in rows
        ],
    }


def _pointer_line(p: dict[str, Any]) -> str:
    live = f"v{p['live']}" if p.get("live") else "none"
    line = f"live: {live}"
    if p.get("canary"):
        line += f" · canary: v{p['canary']} at {p['canary_share']}%"
    if p.get("previous_live"):
        line += f" · rollback returns to v{p['previous_live']}"
    return line


def _echo_json(value: Any) -> None:
    import json

    typer.echo(json.dumps(value, indent=2, sort_keys=True))
