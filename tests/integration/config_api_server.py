"""A served acf for the configuration lifecycle's tests: the HTTP app over uvicorn on a
loopback port, on a SQLite file or a PostgreSQL database of its own, started like ``acf
serve`` (each tenant of the file pushed and promoted as v1), with an ``api`` and an
``admin`` key per tenant."""

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate
from acf.bootstrap import Service, open_service, read_settings
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.entrypoints.http.app import create_app
from acf.entrypoints.http.context import ApiSettings
from acf.ports.api_keys import new_api_key
from tests.http.conftest import config, free_port
from tests.integration.services import require_postgres, temporary_database

TENANTS = ("acme", "globex")
OVERRIDABLE = ["settings.deadline_ms", "settings.fallback_text"]


def served_config() -> dict[str, Any]:
    """Two tenants (``tests.http.conftest.config``); acme's agent lets sessions override
    its deadline and fallback text."""
    body = config()
    support = body["tenants"]["acme"]["agents"]["support"]  # type: ignore[index]
    support["overridable"] = list(OVERRIDABLE)
    return body


def tenant_yaml(tenant: str = "acme", **settings: Any) -> str:
    """One tenant of the served configuration as a file of its own, its agent's settings
    changed by ``settings``."""
    body = copy.deepcopy(served_config())
    fields = body["tenants"][tenant]
    if settings:
        fields["agents"]["support"].setdefault("settings", {}).update(settings)
    return yaml.safe_dump({"version": 1, "tenants": {tenant: fields}})


@dataclass
class Served:
    service: Service
    base_url: str
    keys: dict[tuple[str, str], str]
    """(tenant, scope) → key."""

    def client(self, tenant: str = "acme", scope: str = "admin") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[(tenant, scope)]}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30.0)


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The settings' options for ``backend``: a data folder, or a new database."""
    if backend == "sqlite":
        yield {"data_dir": tmp_path / "data"}
        return
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield {"database_url": libpq_url(url)}


@asynccontextmanager
async def serve(backend: str, tmp_path: Path) -> AsyncIterator[Served]:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(served_config()), encoding="utf-8")
    with database(backend, tmp_path) as options:
        settings = read_settings(options, environ={})
        service = await open_service(load_config(path), settings, builtin_tools=demo_tools())
        await service.start()
        await service.serve_file_versions()
        keys = {}
        for tenant in TENANTS:
            for scope in ("api", "admin"):
                keys[(tenant, scope)] = key = new_api_key()
                await service.api_keys.create(
                    tenant, scope, key, service.clock.now_ms(), scope=scope
                )
        port = free_port()
        app = create_app(service, ApiSettings(heartbeat_s=0.3, poll_s=0.2))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        try:
            yield Served(service, f"http://127.0.0.1:{port}", keys)
        finally:
            server.should_exit = True
            server.force_exit = True
            await task
            await service.close()
