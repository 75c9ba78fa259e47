"""``acf config validate``: check a configuration file without running anything."""

from pathlib import Path
from typing import Annotated

import typer

from acf.entrypoints.cli.common import app

config_app = typer.Typer(no_args_is_help=True, help="The configuration file.")
app.add_typer(config_app, name="config")


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
