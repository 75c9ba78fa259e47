"""``acf serve``: the HTTP API, the web chat and the console over the embedded store, or
one process of the distributed mode (``--role api|worker|all`` over ``ACF_DATABASE_URL``)."""

import asyncio
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir, app

if TYPE_CHECKING:  # imported when a command runs: `acf --help` stays quick
    from opentelemetry.trace import TracerProvider

    from acf.bootstrap import AcfSettings, Service
    from acf.config.load import LoadedConfig

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="ACF_CONFIG",
        help="The configuration file (YAML). Default: the bundled demo configuration.",
    ),
]
DEMO_KEY_FILE = "demo-api-key"
KEEP_ALIVE_S = 75
"""How long the API keeps an idle HTTP/1.1 connection (above the 60 s of common proxies, so
the proxy closes first)."""


def demo_config_path() -> Path:
    """The bundled demo configuration (package data)."""
    from importlib.resources import files

    return Path(str(files("acf.demo") / "acf.yaml"))


async def demo_key(service: "Service", data_dir: Path, tenant: str) -> str:
    """The demo tenant's key: created on the first run, kept in the data directory (mode
    0600) so later runs can print it again. Only the demo configuration does this."""
    from acf.ports.api_keys import new_api_key

    path = data_dir / DEMO_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if await service.api_keys.authenticate(key) is not None:
            return key
    key = new_api_key()
    await service.api_keys.create(tenant, "demo (acf serve)", key, service.clock.now_ms())
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", envvar="ACF_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="ACF_PORT", min=0, max=65535)] = 8000,
    data_dir: DataDir = Path("data"),
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option("--log-level", envvar="ACF_LOG_LEVEL")] = "WARNING",
    tracing: Annotated[
        str,
        typer.Option(
            "--tracing",
            envvar="ACF_TRACING",
            help="OpenTelemetry spans per turn phase: none, console or otlp.",
        ),
    ] = "none",
    role: Annotated[
        str,
        typer.Option(
            "--role",
            envvar="ACF_ROLE",
            help="api: HTTP only; worker: turns and deliveries only (no HTTP); all: both. "
            "api and worker need --database-url (PostgreSQL).",
        ),
    ] = "all",
    database_url: DatabaseUrl = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="ACF_METRICS_PORT",
            min=0,
            max=65535,
            help="worker role: serve /metrics, /healthz and /readyz on this port "
            "(on --host); the API serves them on --port.",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            envvar="ACF_REDIS_URL",
            help="Optional Redis (distributed mode): faster wake-ups, shared rate limits.",
        ),
    ] = None,
) -> None:
    """Run acf: the runtime, the HTTP API (/v1, /docs), the web chat (/) and the console
    (/console). The first run creates the data directory and its database. With
    --database-url, one process of the distributed mode (schema: `acf db upgrade`)."""
    from prometheus_client import disable_created_metrics

    from acf.bootstrap import SettingsError, read_settings
    from acf.config.load import ConfigError, load_config
    from acf.logging import configure_logging
    from acf.observability.tracing import configure_tracing

    options = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "config": config,
        "log_level": log_level,
        "tracing": tracing,
        "role": role,
        "database_url": database_url,
        "metrics_port": metrics_port,
        "redis_url": redis_url,
    }
    try:  # the options (or their variables) over the environment's other ACF_* settings
        settings = read_settings(options)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_locals)
    # *_created series are noise. Called through a typed name: prometheus-client leaves it
    # unannotated today, and a `type: ignore` would turn into an error once it is typed.
    disable_created: Callable[[], None] = disable_created_metrics
    disable_created()
    try:
        provider = configure_tracing(settings.tracing)
    except ValueError as exc:
        typer.echo(f"error: --tracing: {exc}", err=True)
        raise typer.Exit(2) from None
    path = settings.config or demo_config_path()
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    is_demo = path.resolve() == demo_config_path().resolve()
    if is_demo and settings.llm_base_url is not None:
        from acf.demo.llm import llm_demo_config

        try:
            loaded = llm_demo_config(path, settings.llm_base_url, settings.llm_model, os.environ)
        except ConfigError as exc:
            typer.echo(f"error: ACF_LLM_BASE_URL: {exc}", err=True)
            raise typer.Exit(2) from None
    code = _event_loop_run(_serve(loaded, is_demo, settings, provider))
    if code:
        raise typer.Exit(code)


def _event_loop_run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop where it is installed (libuv's loop: less CPU per task,
    callback and socket event than asyncio's own), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(main)
    return uvloop.run(main)


def _label(settings: "AcfSettings") -> str:
    """Where the service keeps its data, and which part of it this process runs."""
    if settings.database_url is None:
        return f"with data in {settings.data_dir.resolve()}"
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url).render_as_string(hide_password=True)
    role = settings.role.value
    return f"as {role} over {url}" + (" with Redis" if settings.redis_url else "")


async def _open(
    loaded: "LoadedConfig", settings: "AcfSettings", tracing: "TracerProvider | None"
) -> "Service":
    from acf.bootstrap import open_service
    from acf.demo import demo_tools

    # The demo's built-in tools (`builtin: commerce`) are offered to every configuration.
    service = await open_service(loaded, settings, builtin_tools=demo_tools(), tracing=tracing)
    try:  # each tenant of the file as a version, live per ACF_CONFIG_SOURCE (DESIGN §17)
        await service.serve_file_versions(settings.config_source)
    except BaseException:
        await service.close()
        raise
    return service


async def _serve(
    loaded: "LoadedConfig",
    is_demo: bool,
    settings: "AcfSettings",
    tracing: "TracerProvider | None",
) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit code."""
    import uvicorn

    from acf.adapters.sqlite.database import DatabaseInUse
    from acf.bootstrap import Role
    from acf.domain.errors import InvalidValue
    from acf.entrypoints.http.app import create_app

    host, port = settings.host, settings.port
    open_errors: tuple[type[Exception], ...] = (RuntimeError,)
    if settings.database_url is not None:  # the postgres extra; the embedded mode needs none
        import psycopg
        from psycopg_pool import PoolTimeout

        open_errors = (RuntimeError, psycopg.Error, PoolTimeout)
    try:
        service = await _open(loaded, settings, tracing)
    except (InvalidValue, DatabaseInUse, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1 if isinstance(exc, DatabaseInUse) else 2
    except open_errors as exc:
        typer.echo(f"error: cannot open the database: {exc}", err=True)
        return 1
    # uvicorn handles SIGINT/SIGTERM while it serves, then re-raises the signal into the
    # handler that was there before: ours only records it, so the finally below closes the
    # runtime and the store instead of the process dying (SIGTERM's default). A signal
    # before uvicorn serves (during recovery, say) is recorded too and stops the start.
    stops: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _: stops.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        await service.start()
        if settings.role is Role.WORKER:
            return await _work(settings, stops, service)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(service),
                host=host,
                port=port,
                log_level="warning",
                log_config=None,  # its records go through acf's redacting, bounded JSON lines
                lifespan="off",
                # Chat clients pause between messages: an idle connection kept 5 s (uvicorn's
                # default) is often closed just as their next message goes out.
                timeout_keep_alive=KEEP_ALIVE_S,
            )
        )
        key = await demo_key(service, settings.data_dir, "demo") if is_demo else None
        try:
            listener = _bind(host, port)
        except OSError as exc:
            typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            return 1
        if stops:  # asked to stop while starting: uvicorn's handlers were not in place yet
            listener.close()
            return 0
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - a flag, no event
            await asyncio.sleep(0.05)
        if stops:
            server.should_exit = True
        _announce(host, listener.getsockname()[1], _label(settings), loaded, key)
        await serving
        return 0
    finally:
        await service.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        typer.echo("acf stopped: the runtime and the store are closed.")


async def _work(settings: "AcfSettings", stops: list[int], service: "Service") -> int:
    """A worker runs turns and deliveries until SIGINT or SIGTERM; with --metrics-port it
    also serves its operations routes (its own metrics: the turns it ran)."""
    import uvicorn

    from acf.entrypoints.http.routes_operations import operations_app

    host, metrics_port = settings.host, settings.metrics_port
    typer.echo(f"acf worker running {_label(settings)}. Press Ctrl+C to stop.")
    serving: asyncio.Task[None] | None = None
    server: uvicorn.Server | None = None
    if metrics_port is not None:
        try:
            listener = _bind(host, metrics_port)
        except OSError as exc:
            message = exc.strerror or exc
            typer.echo(f"error: cannot listen on {host}:{metrics_port}: {message}", err=True)
            return 1
        config = uvicorn.Config(
            operations_app(service),
            host=host,
            log_level="warning",
            log_config=None,  # its records go through acf's redacting, bounded JSON lines
            lifespan="off",
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        base = _base_url(host, listener.getsockname()[1])
        typer.echo(f"  metrics: {base}/metrics   health: {base}/healthz")
    while not stops and (serving is None or not serving.done()):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    typer.echo("acf worker stopping: finishing the turns in hand.")
    if server is not None and serving is not None:
        server.should_exit = True
        await serving
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is a clear error (uvicorn would
    exit the process from inside its task)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The protocol is named so that accepted connections carry it: asyncio turns Nagle's
    # algorithm off (TCP_NODELAY) only on sockets whose proto is IPPROTO_TCP; without it a
    # keep-alive request waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _announce(host: str, port: int, where: str, loaded: "LoadedConfig", key: str | None) -> None:
    """What `acf serve` prints once it listens; with the demo's key, which brain answers."""
    source = loaded.source
    base = _base_url(host, port)
    typer.echo(f"acf is serving {source} {where}")
    if key is not None:
        from acf.demo.llm import brain

        typer.echo(f"  brain:     {brain(loaded)}")
        typer.echo(f"  web chat:  {base}/?key={key}")
        typer.echo(f"  console:   {base}/console?key={key}")
        typer.echo(f"  demo API key (tenant demo): {key}")
    else:
        typer.echo(
            f"  web chat:  {base}/   console: {base}/console   (create a key: acf keys create)"
        )
    typer.echo(f"  API docs:  {base}/docs    metrics: {base}/metrics")
    typer.echo("Press Ctrl+C to stop.")
