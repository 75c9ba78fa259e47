"""``acf scenarios run``: scenario files on the virtual clock, and with ``--tenant`` and
``--version`` against a tenant's configuration version, recorded as that version's
``scenarios`` gate (``acf.preview.scenario_gate``), which ``promote`` checks."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir, scenarios_app

if TYPE_CHECKING:
    from acf.testing.scenarios import ScenarioResult


@scenarios_app.command("run")
def scenarios_run(
    path: Annotated[
        Path, typer.Argument(help="A scenario file, or a folder searched for *.yaml.")
    ] = Path("tests/scenarios"),
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="ACF_LOG_LEVEL", help="Runtime log level.")
    ] = "CRITICAL",
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Run against this tenant's --version.")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="The tenant's version (3 or v3): its agent answers."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Which of the tenant's agents (if several).")
    ] = None,
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run scenarios on a virtual clock against the embedded runtime; exit 1 if any fails.
    With --tenant and --version the agent is that version's and the result is recorded as
    the version's `scenarios` gate."""
    import asyncio
    import time

    from acf.logging import configure_logging
    from acf.testing.scenarios import discover, run_path

    if not path.exists():
        _fail(f"{path} does not exist", 2)
    if not discover(path):
        _fail(f"no *.yaml scenario under {path}", 2)
    if (tenant is None) != (version is None):
        _fail("--tenant and --version go together", 2)
    configure_logging(log_level)
    started = time.perf_counter()
    if tenant is not None and version is not None:
        results = _against_version(path, tenant, version, agent, data_dir, database_url)
    else:
        results = asyncio.run(run_path(path))
    failed = _print(results, time.perf_counter() - started)
    if failed:
        raise typer.Exit(code=1)


def _against_version(
    path: Path,
    tenant: str,
    version: str,
    agent: str | None,
    data_dir: Path,
    database_url: str | None,
) -> list["ScenarioResult"]:
    import asyncio
    import tempfile

    from acf.adapters.memory.clock import SystemClock
    from acf.demo import demo_tools
    from acf.domain.errors import InvalidValue
    from acf.entrypoints.cli.config_preview import version_number, writing
    from acf.ports.config_versions import RecordGate
    from acf.preview.recorded import PreviewError
    from acf.preview.scenario_gate import pick_agent, run_against, summary

    number = version_number(version)

    async def run() -> tuple[list["ScenarioResult"], str]:
        from acf.config.versions_source import load_version

        async with writing(data_dir, database_url) as store:
            found = await store.config_versions.get(tenant, number)
            if found is None:
                raise PreviewError(f"tenant {tenant} has no configuration version {number}")
            with tempfile.TemporaryDirectory(prefix="acf-gate-") as tmp:
                try:
                    loaded = load_version(found.source, Path(tmp))
                except InvalidValue as exc:  # ConfigError too
                    raise PreviewError(f"{found.label} does not load: {exc}") from None
                chosen = pick_agent(loaded, tenant, agent)
                results = await run_against(path, loaded, tenant, chosen, demo_tools())
            passed = all(r.passed for r in results)
            gate = RecordGate(
                tenant,
                number,
                "scenarios",
                passed,
                summary(results, path, chosen),
                SystemClock().now_ms(),
            )
            await store.uow.commit(tenant, [gate])
            return results, found.label

    try:
        results, label = asyncio.run(run())
    except PreviewError as exc:
        _fail(str(exc), 2)
    verdict = "passed" if all(r.passed for r in results) else "failed"
    typer.echo(f"gate `scenarios` of {tenant} {label} recorded: {verdict}")
    return results


def _print(results: list["ScenarioResult"], seconds: float) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("scenario", "result", "replies", "crashes", "virtual time", "wall time")
    for r in results:
        verdict = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(
            r.name, verdict, str(r.replies), str(r.crashes), f"{r.virtual_ms} ms", f"{r.wall_ms} ms"
        )
    console = Console()
    console.print(table)
    for r in results:
        for problem in r.problems:
            console.print(f"[red]{escape(r.name)}[/red] ({r.path}): {escape(problem)}")
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed in {seconds:.1f} s")
    return failed


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
